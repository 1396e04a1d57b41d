/*
 * Reading one key of a Secret named by a reference ({name, key}, as a spec's
 * ...SecretRef fields write it), for a bearer token, a CA or a signing key:
 * read from the API by name each time it is needed (never cached), decoded,
 * and the Secret's other values wiped before they are freed. The value is
 * never logged; the caller wipes it with mb_secret_free_len.
 */
#ifndef MB_KUBE_SECRETREF_H
#define MB_KUBE_SECRETREF_H

#include "kube/client.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * The value of ref ({name, key}) of a Secret in ns, decoded, into *out and
 * *len (wipe with mb_secret_free_len(*out, *len)). field names the spec field
 * in messages ("spec.source.authSecretRef"). 0; 1 with msg set when it cannot
 * be read (no name or key, the Secret cannot be read, has no such key, or the
 * value is not base64: msg names the field, the Secret and the key); MB_ENOMEM.
 */
int kube_secret_ref_read(char **out, size_t *len, kube_client *kc, const char *ns, const cJSON *ref, const char *field,
                         char *msg, size_t msize);

#endif
