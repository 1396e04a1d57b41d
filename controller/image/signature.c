/* Placeholder of the agreed signature interface: refuses everything until the implementation lands. */
#include "image/signature.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>

struct image_key {
    char id[72];
};

int image_key_load(image_key **out, const char *pem, size_t len, char err[IMAGE_SIG_ERROR_MAX])
{
    (void)pem;
    (void)len;
    *out = NULL;
    snprintf(err, IMAGE_SIG_ERROR_MAX, "the public key cannot be read: signature verification is not built");
    return MB_EINVAL;
}

void image_key_free(image_key *k)
{
    free(k);
}

const char *image_key_id(const image_key *k)
{
    return k ? k->id : "";
}

static int refuse(image_sig_verdict *out)
{
    out->payload_sha256[0] = '\0';
    snprintf(out->message, sizeof(out->message), "signature verification is not built");
    return MB_EINVAL;
}

int image_sig_check_simple(image_sig_verdict *out, const image_key *k, const char *digest, const void *payload,
                           size_t len, const char *sig_b64, const char *cert_pem)
{
    (void)k, (void)digest, (void)payload, (void)len, (void)sig_b64, (void)cert_pem;
    return refuse(out);
}

int image_sig_check_bundle(image_sig_verdict *out, const image_key *k, const char *digest, const char *bundle,
                           size_t len, const char *predicate_type)
{
    (void)k, (void)digest, (void)bundle, (void)len, (void)predicate_type;
    return refuse(out);
}

int image_sig_check_envelope(image_sig_verdict *out, const image_key *k, const char *digest, const char *envelope,
                             size_t len, const char *predicate_type)
{
    (void)k, (void)digest, (void)envelope, (void)len, (void)predicate_type;
    return refuse(out);
}
