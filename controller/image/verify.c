/*
 * One verification of verify.h. The signature is looked for first among the
 * digest's referrers (cosign v3: manifests of artifactType sigstore bundle,
 * whose layer is the bundle), then in the `sha256-<hex>.sig` image (cosign
 * v2: simple-signing layers carrying the signature in an annotation); each
 * attestation type the same way, in the bundles and then the
 * `sha256-<hex>.att` image (DSSE envelopes). Everything fetched is kept for
 * the rest of the run, so a bundle read for the signature is not fetched
 * again for an attestation. What a signature says is judged by
 * image/signature.h; this file only finds the candidates and says why none
 * verified: a registry that refused our credentials, a registry that could
 * not be reached (transient), or what was missing or wrong.
 */
#include "image/signature.h"
#include "image/verify_private.h"
#include "util/error.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUNDLE_TYPE_PREFIX "application/vnd.dev.sigstore.bundle"
#define EMPTY_TYPE "application/vnd.oci.empty.v1+json"
#define DSSE_TYPE "application/vnd.dsse.envelope.v1+json"
#define SIG_ANNOTATION "dev.cosignproject.cosign/signature"
#define CERT_ANNOTATION "dev.sigstore.cosign/certificate"
#define BUNDLE_PREDICATE_ANNOTATION "dev.sigstore.bundle.predicateType"
#define CANDIDATES_MAX 32 /* referrers, or layers of one .sig/.att image, looked at */
#define FETCHED_MAX 96

typedef struct {
    char key[96]; /* "m:<ref>" manifest, "b:<digest>" blob, "r:" the referrers */
    registry_answer a;
} fetched;

typedef struct {
    registry *reg;
    const image_key *key;
    const char *digest;
    fetched got[FETCHED_MAX];
    size_t ngot;
    bool referrers_fallback;
    char unreachable[REGISTRY_MESSAGE_MAX]; /* the first transient failure, "" if none */
    char denied[REGISTRY_MESSAGE_MAX];      /* the first credentials refusal, "" if none */
    char why[REGISTRY_MESSAGE_MAX];         /* the last candidate that did not verify, and why */
    int looked;                             /* candidates judged */
} run;

int image_input_key(image_key **out, const image_verify_input *in, char err[IMAGE_SIG_ERROR_MAX])
{
    *out = NULL;
    if (!in->public_key_pem || in->public_key_len == 0) {
        snprintf(err, IMAGE_SIG_ERROR_MAX, "the key is empty");
        return MB_EINVAL;
    }
    return image_key_load(out, in->public_key_pem, in->public_key_len, err);
}

static void why_set(run *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why_set(run *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
}

/* Keeps what a fetch that did not find says: a refusal of the credentials and a transient failure are remembered. */
static void note(run *c, const registry_answer *a)
{
    if (a->outcome == REGISTRY_UNREACHABLE && !c->unreachable[0])
        snprintf(c->unreachable, sizeof(c->unreachable), "%s", a->message);
    else if (a->outcome == REGISTRY_REFUSED && a->denied && !c->denied[0])
        snprintf(c->denied, sizeof(c->denied), "%s", a->message);
    else if (a->outcome == REGISTRY_REFUSED)
        why_set(c, "%s", a->message);
}

/* A fetch kept for the run: kind 'm' manifest (digest or tag), 'b' blob, 'r' referrers. 0 (*out borrowed) or MB_ENOMEM. */
static int get(run *c, char kind, const char *ref, const registry_answer **out)
{
    char key[96];
    int err = 0;
    snprintf(key, sizeof(key), "%c:%s", kind, ref);
    for (size_t i = 0; i < c->ngot; i++)
        if (strcmp(c->got[i].key, key) == 0) {
            *out = &c->got[i].a;
            return 0;
        }
    fetched *f = &c->got[c->ngot < FETCHED_MAX ? c->ngot : FETCHED_MAX - 1];
    if (c->ngot == FETCHED_MAX)
        registry_answer_clear(&f->a); /* full: the last slot is reused */
    else
        c->ngot++;
    snprintf(f->key, sizeof(f->key), "%s", key);
    if (kind == 'm')
        err = registry_manifest(&f->a, c->reg, ref);
    else if (kind == 'b')
        err = registry_blob(&f->a, c->reg, ref);
    else
        err = registry_referrers(&f->a, c->reg, ref, &c->referrers_fallback);
    if (err < 0) {
        registry_answer_clear(&f->a);
        f->key[0] = '\0';
        return err;
    }
    if (f->a.outcome != REGISTRY_FOUND)
        note(c, &f->a);
    *out = &f->a;
    return 0;
}

/* A fetched manifest or index as JSON (NULL: not found, or not JSON: c->why says so). The caller deletes it. */
static int get_json(run *c, char kind, const char *ref, cJSON **out)
{
    const registry_answer *a = NULL;
    int err = get(c, kind, ref, &a);
    *out = NULL;
    if (err < 0 || a->outcome != REGISTRY_FOUND)
        return err;
    if (!(*out = cJSON_ParseWithLength(a->body, a->len)) || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        why_set(c, "%s %s is not a JSON object", kind == 'r' ? "the referrers index of" : "the manifest", ref);
    }
    return 0;
}

static const char *annotation(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "annotations"), name));
}

static const char *str_of(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

/* The found signature or attestation, when one verified. */
typedef struct {
    bool ok;
    char layout[4];
    char payload_sha256[72];
} found;

static bool is_bundle(const char *media_type)
{
    return strncmp(media_type, BUNDLE_TYPE_PREFIX, strlen(BUNDLE_TYPE_PREFIX)) == 0;
}

/* v3: every sigstore bundle among the referrers, judged for predicate (NULL: a signature). */
static int look_v3(run *c, const char *predicate, found *f)
{
    cJSON *index = NULL;
    const cJSON *m;
    int err = 0, n = 0;

    if ((err = get_json(c, 'r', c->digest, &index)) < 0 || !index)
        return err;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(index, "manifests")) {
        const char *type = str_of(m, "artifactType"), *d = str_of(m, "digest");
        const char *pt = annotation(m, BUNDLE_PREDICATE_ANNOTATION);
        cJSON *man = NULL;
        const cJSON *l;
        /* a referrer that says it is something else (an SBOM, another signature format) is not fetched; one
         * without an artifactType, or with the empty config's (as some registries' referrers API answers for
         * cosign's bundles), is judged by its manifest */
        if (!mb_sha256_digest_valid(d) || (type && !is_bundle(type) && strcmp(type, EMPTY_TYPE) != 0))
            continue;
        if (pt && strcmp(pt, predicate ? predicate : IMAGE_SIG_COSIGN_SIGN_PREDICATE) != 0)
            continue; /* a bundle of another predicate type, as its annotation says */
        if (n++ >= CANDIDATES_MAX)
            break;
        if ((err = get_json(c, 'm', d, &man)) < 0)
            break;
        /* the manifest says whether it is a bundle, and cosign names the predicate type there: one of another
         * type is not fetched */
        type = str_of(man, "artifactType");
        if (!type)
            type = str_of(cJSON_GetObjectItemCaseSensitive(man, "config"), "mediaType");
        pt = annotation(man, BUNDLE_PREDICATE_ANNOTATION);
        if (!type || !is_bundle(type) ||
            (pt && strcmp(pt, predicate ? predicate : IMAGE_SIG_COSIGN_SIGN_PREDICATE) != 0)) {
            cJSON_Delete(man);
            continue;
        }
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(man, "layers")) {
            const char *lt = str_of(l, "mediaType"), *ld = str_of(l, "digest");
            const registry_answer *b = NULL;
            image_sig_verdict v = {0};
            if (!lt || !is_bundle(lt))
                continue;
            if ((err = get(c, 'b', ld ? ld : "", &b)) < 0)
                break;
            if (b->outcome != REGISTRY_FOUND)
                continue;
            c->looked++;
            err = image_sig_check_bundle(&v, c->key, c->digest, b->body, b->len, predicate);
            if (err == MB_ENOMEM)
                break;
            if (err == 0) {
                f->ok = true;
                snprintf(f->layout, sizeof(f->layout), "v3");
                snprintf(f->payload_sha256, sizeof(f->payload_sha256), "%s", v.payload_sha256);
                break;
            }
            err = 0;
            why_set(c, "the sigstore bundle %s does not verify: %s", ld, v.message);
        }
        cJSON_Delete(man);
        if (err < 0 || f->ok)
            break;
    }
    cJSON_Delete(index);
    return err;
}

/* v2: the layers of the sha256-<hex>.sig image (predicate NULL) or of the sha256-<hex>.att image. */
static int look_v2(run *c, const char *predicate, found *f)
{
    char tag[80];
    cJSON *man = NULL;
    const cJSON *l;
    int err = 0, n = 0;

    snprintf(tag, sizeof(tag), "sha256-%s.%s", c->digest + 7, predicate ? "att" : "sig");
    if ((err = get_json(c, 'm', tag, &man)) < 0 || !man)
        return err;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(man, "layers")) {
        const char *lt = str_of(l, "mediaType"), *ld = str_of(l, "digest");
        const char *sig = annotation(l, SIG_ANNOTATION), *pt = annotation(l, "predicateType");
        const registry_answer *b = NULL;
        image_sig_verdict v = {0};
        if (predicate ? !lt || strcmp(lt, DSSE_TYPE) != 0 || (pt && strcmp(pt, predicate) != 0) : !sig)
            continue;
        if (n++ >= CANDIDATES_MAX)
            break;
        if ((err = get(c, 'b', ld ? ld : "", &b)) < 0)
            break;
        if (b->outcome != REGISTRY_FOUND)
            continue;
        c->looked++;
        if (predicate)
            err = image_sig_check_envelope(&v, c->key, c->digest, b->body, b->len, predicate);
        else
            err = image_sig_check_simple(&v, c->key, c->digest, b->body, b->len, sig, annotation(l, CERT_ANNOTATION));
        if (err == MB_ENOMEM)
            break;
        if (err == 0) {
            f->ok = true;
            snprintf(f->layout, sizeof(f->layout), "v2");
            snprintf(f->payload_sha256, sizeof(f->payload_sha256), "%s", v.payload_sha256);
            break;
        }
        err = 0;
        why_set(c, "the %s layer %s of %s does not verify: %s", predicate ? "attestation" : "signature", ld, tag,
                v.message);
    }
    cJSON_Delete(man);
    return err;
}

/* Looks for one signature (predicate NULL) or attestation, v3 then v2. */
static int look(run *c, const char *predicate, found *f)
{
    int err = look_v3(c, predicate, f);
    if (err < 0 || f->ok)
        return err;
    return look_v2(c, predicate, f);
}

/* Says why nothing verified: credentials, then unreachable (transient), then what was missing or wrong. */
static void judge_missing(image_verify_result *out, run *c, const image_verify_input *in, const char *predicate)
{
    char what[500];
    if (predicate)
        snprintf(what, sizeof(what), "image %.150s@%s has no attestation of predicate type %.150s signed by key %s",
                 in->repository, in->digest, predicate, out->key_id);
    else
        snprintf(what, sizeof(what), "image %.200s@%s has no cosign signature by key %s", in->repository, in->digest,
                 out->key_id);
    if (c->denied[0]) {
        out->state = IMAGE_VERIFY_REFUSED;
        snprintf(out->message, sizeof(out->message), "%s: %.500s", what, c->denied);
    } else if (c->unreachable[0]) {
        out->state = IMAGE_VERIFY_UNREACHABLE;
        snprintf(out->message, sizeof(out->message), "image %.250s@%s could not be verified: %.600s", in->repository,
                 in->digest, c->unreachable);
    } else if (c->why[0]) {
        out->state = IMAGE_VERIFY_REFUSED;
        snprintf(out->message, sizeof(out->message), "%s: %.500s", what, c->why);
    } else {
        out->state = IMAGE_VERIFY_REFUSED;
        snprintf(out->message, sizeof(out->message),
                 "%s: no sigstore bundle%s among its referrers (%s) and no sha256-%s.%s image", what,
                 predicate ? " of that type" : "", c->referrers_fallback ? "tag sha256-<hex>" : "referrers API",
                 in->digest + 7, predicate ? "att" : "sig");
    }
}

static void refuse(image_verify_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(image_verify_result *out, const char *fmt, ...)
{
    va_list ap;
    out->state = IMAGE_VERIFY_REFUSED;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

int image_verify_run_with(image_verify_result *out, net_loop *net, const image_verify_input *in,
                          registry_cancel *cancel)
{
    image_key *key = NULL;
    registry_ref ref;
    char err_text[REGISTRY_MESSAGE_MAX > IMAGE_SIG_ERROR_MAX ? REGISTRY_MESSAGE_MAX : IMAGE_SIG_ERROR_MAX];
    run *c = NULL;
    found sig = {0};
    int err = 0;

    if (!out || !net || !in || (in->n_attestations && !in->attestations))
        return mb_error_set(MB_EINVAL, "image_verify_run needs a result, a transfer loop and a whole input");
    memset(out, 0, sizeof(*out));
    if (!mb_sha256_digest_valid(in->digest)) {
        refuse(out, "spec.image.digest \"%.100s\" is not sha256:<64 lowercase hex>", in->digest ? in->digest : "");
        return 0;
    }
    if ((err = image_input_key(&key, in, err_text)) < 0) {
        if (err == MB_ENOMEM)
            return err;
        refuse(out, "image %s cannot be verified: the public key of spec.image.verify.publicKeySecretRef: %s",
               in->digest, err_text);
        return 0;
    }
    snprintf(out->key_id, sizeof(out->key_id), "%s", image_key_id(key));
    if (registry_ref_parse(&ref, in->repository, err_text) < 0) {
        refuse(out, "image %s cannot be verified: %s", in->digest, err_text);
        goto done;
    }
    for (size_t i = 0; i < in->n_attestations; i++)
        if (!in->attestations[i] || !in->attestations[i][0]) {
            refuse(out,
                   "image %s cannot be verified: spec.image.verify.attestations[%zu] is empty; name a predicate "
                   "type such as https://slsa.dev/provenance/v1",
                   in->digest, i);
            goto done;
        }
    if (!(c = calloc(1, sizeof(*c)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    registry_opts ro = {.net = net,
                        .ref = &ref,
                        .docker_config = in->docker_config,
                        .ca_pem = in->ca_pem,
                        .insecure = in->insecure,
                        .timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : IMAGE_VERIFY_TIMEOUT_MS_DEFAULT,
                        .cancel = cancel};
    if ((err = registry_new(&c->reg, &ro)) < 0) {
        if (err == MB_ENOMEM)
            goto done;
        refuse(out, "image %s cannot be verified: %s", in->digest, mb_error_last());
        err = 0;
        goto done;
    }
    c->key = key;
    c->digest = in->digest;
    if ((err = look(c, NULL, &sig)) < 0)
        goto done;
    if (!sig.ok) {
        judge_missing(out, c, in, NULL);
        goto done;
    }
    for (size_t i = 0; i < in->n_attestations; i++) {
        found att = {0};
        c->why[0] = '\0';
        if ((err = look(c, in->attestations[i], &att)) < 0)
            goto done;
        if (!att.ok) {
            judge_missing(out, c, in, in->attestations[i]);
            goto done;
        }
    }
    out->state = IMAGE_VERIFY_VERIFIED;
    snprintf(out->layout, sizeof(out->layout), "%s", sig.layout);
    snprintf(out->payload_sha256, sizeof(out->payload_sha256), "%s", sig.payload_sha256);
    snprintf(out->message, sizeof(out->message), "image %.300s@%s is signed by key %s (cosign %s)%s", in->repository,
             in->digest, out->key_id, strcmp(sig.layout, "v3") == 0 ? "v3 bundle" : "v2 .sig",
             in->n_attestations ? " and attested for every listed predicate type" : "");
done:
    if (c) {
        for (size_t i = 0; i < c->ngot; i++)
            registry_answer_clear(&c->got[i].a);
        registry_free(c->reg);
        free(c);
    }
    image_key_free(key);
    if (err < 0)
        memset(out, 0, sizeof(*out));
    return err;
}

int image_verify_run(image_verify_result *out, net_loop *net, const image_verify_input *in)
{
    return image_verify_run_with(out, net, in, NULL);
}
