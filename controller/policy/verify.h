/*
 * PolicyBundle: steps 2 to 6 of policy/decide.h on fetched bytes, pure (no
 * I/O but memory): the digest computed while streaming against
 * spec.source.digest, the size a ConfigMap can carry, the structure
 * (bundle_read), the signatures when spec.signing is set, and the required
 * roots. The first that does not hold gives the reason and a message naming
 * what to fix; the read bundle is kept for the decision tests.
 */
#ifndef MB_POLICY_VERIFY_H
#define MB_POLICY_VERIFY_H

#include "policy/bundle.h"
#include "policy/decide.h"

#include <cjson/cJSON.h>

typedef struct {
    policy_verification v; /* its strings point into this struct */
    char reason[32];
    char message[1024];
    bundle *b; /* the read bundle, once the structure held (owned) */
} policy_checked;

/*
 * Checks gz[0..len) whose SHA-256 (hex) is sha256_hex against the
 * PolicyBundle obj. public_key_pem: the key of spec.signing (NULL when
 * spec.signing is absent). 0 with out filled (out->v.reason NULL when every
 * check held), or MB_ENOMEM. Free with policy_checked_clear.
 */
int policy_verify_bytes(policy_checked *out, const void *gz, size_t len, const char *sha256_hex, const cJSON *obj,
                        const char *public_key_pem);

void policy_checked_clear(policy_checked *c);

#endif
