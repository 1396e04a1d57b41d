/*
 * PolicyBundle: the checks on the fetched bytes (policy/verify.h).
 */
#include "policy/verify.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

static int fail(policy_checked *out, const char *reason)
{
    snprintf(out->reason, sizeof(out->reason), "%s", reason);
    out->v.reason = out->reason;
    out->v.message = out->message;
    return 0;
}

int policy_verify_bytes(policy_checked *out, const void *gz, size_t len, const char *sha256_hex, const cJSON *obj,
                        const char *public_key_pem)
{
    const char *digest = json_str(obj, "spec", "source", "digest", NULL);
    const cJSON *signing = json_get(obj, "spec", "signing", NULL);
    char err[BUNDLE_ERROR_MAX] = "";
    char got[80];
    int rc;

    memset(out, 0, sizeof(*out));
    out->v.size_bytes = (long long)len;
    snprintf(got, sizeof(got), "sha256:%s", sha256_hex ? sha256_hex : "");
    if (!digest || strcmp(digest, got) != 0) {
        snprintf(out->message, sizeof(out->message),
                 "the bytes fetched from spec.source.url hash to %s, not to spec.source.digest %s: pin the digest of "
                 "the bundle the URL serves",
                 got, digest ? digest : "(none)");
        return fail(out, "DigestMismatch");
    }
    if ((long long)len > POLICY_CM_MAX_BYTES) {
        snprintf(out->message, sizeof(out->message),
                 "the bundle is %zu bytes, more than the %lld a ConfigMap can carry (900 KiB): shrink the bundle at "
                 "spec.source.url",
                 len, POLICY_CM_MAX_BYTES);
        return fail(out, "TooLarge");
    }
    rc = bundle_read(&out->b, gz, len, policy_max_bytes(obj) * POLICY_UNPACKED_FACTOR, err);
    if (rc == MB_ENOMEM)
        return rc;
    if (rc < 0) {
        snprintf(out->message, sizeof(out->message), "the bundle at spec.source.url is not a valid OPA bundle: %s",
                 err[0] ? err : mb_error_last());
        return fail(out, "InvalidBundle");
    }
    out->v.structure_checked = true;
    out->v.revision = out->b->revision;
    out->v.roots = out->b->roots;
    out->v.rego_modules = (long long)out->b->rego_modules;
    if (cJSON_IsObject(signing)) {
        bundle_signing s = {.public_key_pem = public_key_pem,
                            .key_id = json_str(signing, "keyID", NULL),
                            .scope = json_str(signing, "scope", NULL)};
        if (!public_key_pem) {
            snprintf(out->message, sizeof(out->message),
                     "the public key of spec.signing.publicKeySecretRef could not be read");
            return fail(out, "SignatureInvalid");
        }
        if (!out->b->signatures) {
            snprintf(out->message, sizeof(out->message),
                     "spec.signing is set but the bundle has no .signatures.json: sign it with opa build "
                     "--signing-key");
            return fail(out, "SignatureInvalid");
        }
        err[0] = '\0';
        rc = bundle_verify_signatures(out->b, &s, err);
        if (rc == MB_ENOMEM)
            return rc;
        if (rc < 0) {
            snprintf(out->message, sizeof(out->message),
                     "the bundle's .signatures.json does not verify with spec.signing: %s",
                     err[0] ? err : mb_error_last());
            return fail(out, "SignatureInvalid");
        }
        out->v.signature_checked = true;
    }
    const char *missing = bundle_missing_root(out->b, json_get(obj, "spec", "requiredRoots", NULL));
    if (missing) {
        snprintf(out->message, sizeof(out->message),
                 "no root of the bundle's .manifest covers %s of spec.requiredRoots: add it to the manifest's roots",
                 missing);
        return fail(out, "MissingRoot");
    }
    return 0;
}

void policy_checked_clear(policy_checked *c)
{
    if (!c)
        return;
    bundle_free(c->b);
    memset(c, 0, sizeof(*c));
}
