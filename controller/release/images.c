/*
 * release_images_lookup (images.h): spec.image.verify read into the image
 * verifier's input, and its results turned into the decision's verdicts.
 */
#include "release/images.h"
#include "kube/secretref.h"
#include "util/error.h"
#include "util/json.h"
#include "util/secret.h"

#include <stdio.h>
#include <string.h>

/* The Secrets of spec.image.verify, read for one lookup; every value wiped when done. */
typedef struct {
    char *key_pem, *docker_config, *ca_pem;
    size_t key_len, docker_config_len, ca_len;
} verify_secrets;

static void secrets_clear(verify_secrets *s)
{
    mb_secret_free_len(s->key_pem, s->key_len);
    mb_secret_free_len(s->docker_config, s->docker_config_len);
    mb_secret_free_len(s->ca_pem, s->ca_len);
    memset(s, 0, sizeof(*s));
}

/* Reads the three Secrets; 0, 1 with why set (the field that cannot be read), MB_ENOMEM. */
static int secrets_read(verify_secrets *out, kube_client *client, const cJSON *release, const cJSON *v, char *why,
                        size_t wlen)
{
    const char *ns = json_str(release, "metadata", "namespace", NULL);
    const cJSON *ca = json_get(v, "caSecretRef", NULL);
    const char *reg = json_str(v, "registrySecretRef", "name", NULL);
    int rc;

    if (!client) {
        snprintf(why, wlen, "there is no Kubernetes client to read spec.image.verify.publicKeySecretRef with");
        return 1;
    }
    if ((rc = kube_secret_ref_read(&out->key_pem, &out->key_len, client, ns, json_get(v, "publicKeySecretRef", NULL),
                                   "spec.image.verify.publicKeySecretRef", why, wlen)) != 0)
        return rc;
    if (reg && *reg) {
        /* a kubernetes.io/dockerconfigjson Secret: its one key */
        cJSON *ref = cJSON_CreateObject();
        if (!ref || json_set_str(ref, "name", reg) < 0 || json_set_str(ref, "key", ".dockerconfigjson") < 0) {
            cJSON_Delete(ref);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        rc = kube_secret_ref_read(&out->docker_config, &out->docker_config_len, client, ns, ref,
                                  "spec.image.verify.registrySecretRef", why, wlen);
        cJSON_Delete(ref);
        if (rc != 0)
            return rc;
    }
    if (ca && !cJSON_IsNull(ca))
        return kube_secret_ref_read(&out->ca_pem, &out->ca_len, client, ns, ca, "spec.image.verify.caSecretRef", why,
                                    wlen);
    return 0;
}

/* The verdict of result r on digest d. */
static void verdict_of(release_image_verdict *out, const image_verify_result *r, const char *d)
{
    out->digest = d;
    out->state = r->state == IMAGE_VERIFY_VERIFIED  ? RELEASE_IMAGE_VERIFIED
                 : r->state == IMAGE_VERIFY_REFUSED ? RELEASE_IMAGE_REFUSED
                                                    : RELEASE_IMAGE_UNREACHABLE;
    out->message = r->message;
    out->payload_digest = r->payload_sha256;
    out->layout = r->layout;
    out->key_id = r->key_id;
}

int release_images_lookup(release_image_lookup *out, image_verifier *v, kube_client *client, const cJSON *release,
                          const release_plan *plan, const char *key)
{
    const cJSON *spec = json_get(release, "spec", "image", "verify", NULL), *a;
    const char *atts[RELEASE_ATTESTATIONS_MAX];
    size_t n_atts = 0;
    verify_secrets sec = {0};
    char why[sizeof(out->results[0].message)];
    bool pending = false;
    int err = 0;

    memset(out, 0, sizeof(*out));
    cJSON_ArrayForEach(a, json_get(spec, "attestations", NULL)) {
        if (cJSON_IsString(a) && n_atts < RELEASE_ATTESTATIONS_MAX)
            atts[n_atts++] = a->valuestring;
    }
    int rc = secrets_read(&sec, client, release, spec, why, sizeof(why));
    if (rc < 0) {
        err = rc;
        goto done;
    }
    for (size_t i = 0; i < plan->n_verify_digests && i < RELEASE_VERIFY_DIGESTS; i++) {
        image_verify_result *r = &out->results[i];
        const char *d = plan->verify_digests[i];
        if (rc == 1) {
            /* a Secret that cannot be read: creating it unblocks the release, as the registry coming back does */
            r->state = IMAGE_VERIFY_UNREACHABLE;
            snprintf(r->message, sizeof(r->message), "%s", why);
        } else {
            image_verify_input in = {
                .repository = plan->verify_repositories[i],
                .digest = d,
                .public_key_pem = sec.key_pem,
                .public_key_len = sec.key_len,
                .attestations = atts,
                .n_attestations = n_atts,
                .docker_config = sec.docker_config,
                .ca_pem = sec.ca_pem,
                .insecure = cJSON_IsTrue(json_get(spec, "insecureRegistry", NULL)),
            };
            if ((err = image_verifier_get(r, v, &in, key)) < 0)
                goto done;
            pending = pending || r->state == IMAGE_VERIFY_PENDING;
        }
        verdict_of(&out->verdicts[i], r, d);
        out->n = i + 1;
    }
done:
    secrets_clear(&sec);
    if (err < 0)
        return err;
    return pending ? 1 : 0;
}
