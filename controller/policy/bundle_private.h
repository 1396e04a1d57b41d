/*
 * What bundle.c and signature.c share and the controller does not need.
 */
#ifndef MB_POLICY_BUNDLE_PRIVATE_H
#define MB_POLICY_BUNDLE_PRIVATE_H

#include "policy/bundle.h"

/*
 * bundle_read's checks of what it unpacked: b holds the files (names already
 * normalized, data NUL-terminated) and unpacked_bytes; the rest of b is
 * filled here (manifest, signatures, revision, roots, rego_modules). Duplicate
 * names, the .manifest and its members, nested .manifest or .signatures.json,
 * the .rego count and the data files. 0, MB_EINVAL (err says why), MB_ENOMEM.
 * Apart from libarchive so that it can be tortured alone (libarchive 3.6 aborts
 * the process on some failed allocations of its own).
 */
int bundle_check_structure(bundle *b, char err[BUNDLE_ERROR_MAX]);

#endif
