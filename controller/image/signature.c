/*
 * Judges cosign's signatures and attestations of an image digest against one
 * public key (image/signature.h). Formats read: cosign's simple signing
 * payload (github.com/containers/image docs/containers-signature.5.md, with
 * type "cosign container image signature", the signature in the layer's
 * dev.cosignproject.cosign/signature annotation); DSSE envelopes
 * (github.com/secure-systems-lab/dsse, envelope.md and protocol.md: the
 * signature is over PAE(payloadType, payload) = "DSSEv1" SP len(type) SP type
 * SP len(body) SP body); in-toto statements (github.com/in-toto/attestation
 * spec/v1/statement.md, _type https://in-toto.io/Statement/v1, or v0.1) with
 * their subject digests; and the sigstore bundle (github.com/sigstore/protobuf-specs
 * protos/sigstore_bundle.proto, v0.1 to v0.3, in protobuf's JSON mapping:
 * camelCase members, bytes as standard base64) with either a messageSignature
 * (messageDigest {algorithm, digest} and signature) or a dsseEnvelope. cosign
 * v3's `cosign sign` writes a bundle holding a DSSE envelope whose in-toto
 * statement has predicateType https://sigstore.dev/cosign/sign/v1 and the
 * image digest as subject. Signature schemes as cosign signs: ECDSA P-256 with
 * SHA-256 and P-384 with SHA-384 (SHA-256 accepted too, as cosign's verify
 * wants it), ASN.1 DER signatures; RSA PKCS#1 v1.5 with SHA-256 (PSS with
 * SHA-256 accepted too); Ed25519 pure, over the message (cosign itself signs
 * Ed25519ph, which OpenSSL 3.0 has no verifier for: refused, saying so). JSON
 * is read as Go reads it (util/gojson.h), and a member these checks rely on
 * may appear only once (Go would take the last, cJSON the first).
 */
#include "image/signature.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/gojson.h"
#include "util/pkey.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN 100
#define MAX_SIGNATURES 32
#define SIMPLE_TYPE "cosign container image signature"
#define INTOTO_PAYLOAD_TYPE "application/vnd.in-toto+json"
/* cosign 2 and 3 sign Ed25519ph with an Ed25519 key, which OpenSSL 3.0 cannot verify (nor cosign's verify) */
#define ED25519PH                                                                                                      \
    "; cosign signs Ed25519ph with Ed25519 keys, which cannot be verified here (nor by cosign verify): sign with an "  \
    "ECDSA P-256 key"
#define KEYLESS "keyless signatures (Fulcio certificate, Rekor) are not supported; sign with a key: cosign sign --key"

struct image_key {
    EVP_PKEY *pkey;
    mb_pkey_type type;
    char id[72];
    char kind[24];
};

/* ---- messages --------------------------------------------------------------------- */

static int refuse(image_sig_verdict *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(image_sig_verdict *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    return mb_error_set(MB_EINVAL, "%s", out->message);
}

static int oom(image_sig_verdict *out)
{
    snprintf(out->message, sizeof(out->message), "out of memory while verifying a signature");
    return mb_error_set(MB_ENOMEM, "%s", out->message);
}

static int key_fail(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int key_fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, IMAGE_SIG_ERROR_MAX, fmt, ap);
    va_end(ap);
    return mb_error_set(code, "%s", err);
}

/* ---- small readers ---------------------------------------------------------------- */

/* The member name of obj, or NULL when it is absent or appears more than once (*twice then set). */
static const cJSON *member(const cJSON *obj, const char *name, bool *twice)
{
    const cJSON *found = NULL;
    if (!cJSON_IsObject(obj))
        return NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(c->string, name) == 0) {
            if (found) {
                *twice = true;
                return NULL;
            }
            found = c;
        }
    return found;
}

static const char *member_str(const cJSON *obj, const char *name, bool *twice)
{
    const cJSON *v = member(obj, name, twice);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Strict standard base64 (util/base64.h) as the bytes these checks read. 0, MB_EINVAL, MB_ENOMEM. */
static int b64_decode(unsigned char **out, size_t *out_len, const char *in)
{
    char *bytes = NULL;
    int rc = mb_base64_decode_strict(&bytes, out_len, in);
    *out = (unsigned char *)bytes;
    return rc;
}

/* JSON text as Go reads it, which must be an object (*doc NULL otherwise). 0, MB_EINVAL (message names what), MB_ENOMEM. */
static int parse_object(cJSON **doc, image_sig_verdict *out, const char *digest, const void *text, size_t len,
                        const char *what)
{
    int rc = mb_gojson_parse(doc, text, len, false);
    if (rc == MB_ENOMEM)
        return oom(out);
    if (rc < 0 || !cJSON_IsObject(*doc)) {
        cJSON_Delete(*doc);
        *doc = NULL;
        return refuse(out, "%s: the %s is not a JSON object", digest, what);
    }
    return 0;
}

/* ---- keys ------------------------------------------------------------------------- */

static bool contains(const char *s, size_t len, const char *what)
{
    size_t n = strlen(what);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, what, n) == 0)
            return true;
    return false;
}

int image_key_load(image_key **out, const char *pem, size_t len, char err[IMAGE_SIG_ERROR_MAX])
{
    image_key *k = NULL;
    unsigned char *der = NULL;
    int rc = 0;

    *out = NULL;
    err[0] = '\0';
    if (!(k = calloc(1, sizeof(*k))))
        return key_fail(err, MB_ENOMEM, "out of memory while loading the public key");
    if ((rc = mb_pkey_load(&k->pkey, pem, len, 0)) == MB_ENOMEM) {
        rc = key_fail(err, MB_ENOMEM, "out of memory while loading the public key");
        goto done;
    }
    if (rc < 0) {
        if (contains(pem, len, "PRIVATE KEY-----"))
            rc = key_fail(err, MB_EINVAL,
                          "the key is a private key; give the public key (cosign.pub, or "
                          "cosign public-key --key cosign.key)");
        else if (contains(pem, len, "BEGIN CERTIFICATE"))
            rc = key_fail(err, MB_EINVAL, "the key is a certificate, not a public key: " KEYLESS);
        else
            rc = key_fail(err, MB_EINVAL,
                          "the key is not a PEM public key (-----BEGIN PUBLIC KEY-----, as cosign "
                          "generate-key-pair writes cosign.pub)");
        goto done;
    }
    k->type = mb_pkey_type_of(k->pkey);
    switch (k->type) {
    case MB_PKEY_P256: snprintf(k->kind, sizeof(k->kind), "ECDSA P-256"); break;
    case MB_PKEY_P384: snprintf(k->kind, sizeof(k->kind), "ECDSA P-384"); break;
    case MB_PKEY_ED25519: snprintf(k->kind, sizeof(k->kind), "Ed25519"); break;
    case MB_PKEY_RSA:
        if (EVP_PKEY_get_bits(k->pkey) < MB_PKEY_RSA_MIN_BITS) {
            rc = key_fail(err, MB_EINVAL, "the key is an RSA key of %d bits; at least %d are needed",
                          EVP_PKEY_get_bits(k->pkey), MB_PKEY_RSA_MIN_BITS);
            goto done;
        }
        snprintf(k->kind, sizeof(k->kind), "RSA-%d", EVP_PKEY_get_bits(k->pkey));
        break;
    default:
        rc = key_fail(err, MB_EINVAL,
                      "the key is %s%s; cosign keys are ECDSA P-256 or P-384, Ed25519 or RSA of at least %d bits",
                      mb_pkey_kind(k->pkey),
                      EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_EC ? " on a curve other than P-256 and P-384" : "",
                      MB_PKEY_RSA_MIN_BITS);
        goto done;
    }
    int der_len = i2d_PUBKEY(k->pkey, &der);
    if (der_len <= 0) {
        rc = key_fail(err, MB_ENOMEM, "out of memory while loading the public key");
        goto done;
    }
    mb_sha256_digest(k->id, der, (size_t)der_len);
    if (!k->id[7]) {
        rc = key_fail(err, MB_ENOMEM, "out of memory while loading the public key");
        goto done;
    }
    *out = k;
    k = NULL;
done:
    ERR_clear_error();
    OPENSSL_free(der);
    image_key_free(k);
    return rc;
}

void image_key_free(image_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *image_key_id(const image_key *k)
{
    return k->id;
}

const char *image_key_kind(const image_key *k)
{
    return k->kind;
}

/* 1: sig is k's signature over msg as cosign signs with a key of its kind; 0: not; MB_ENOMEM, MB_ERROR. */
static int key_verifies(const image_key *k, const void *msg, size_t len, const unsigned char *sig, size_t sig_len)
{
    mb_pkey_scheme s = {0};
    switch (k->type) {
    case MB_PKEY_P256: s.digest = "SHA256"; break;
    case MB_PKEY_P384: {
        /* cosign signs over SHA-384 with a P-384 key, but its verify (and other signers) use SHA-256 */
        s.digest = "SHA384";
        int rc = mb_pkey_verify(k->pkey, &s, msg, len, sig, sig_len);
        if (rc != 0)
            return rc;
        s.digest = "SHA256";
        break;
    }
    case MB_PKEY_ED25519: break;
    case MB_PKEY_RSA: {
        s.digest = "SHA256";
        int rc = mb_pkey_verify(k->pkey, &s, msg, len, sig, sig_len);
        if (rc != 0)
            return rc;
        s.pss = true;
        s.pss_saltlen = RSA_PSS_SALTLEN_AUTO;
        break;
    }
    default: return MB_ERROR;
    }
    return mb_pkey_verify(k->pkey, &s, msg, len, sig, sig_len);
}

/* Turns key_verifies' answer into the verdict's: 0 verified, else refused with what. */
static int judge_verify(int rc, image_sig_verdict *out, const image_key *k, const char *digest, const char *what)
{
    if (rc == 1)
        return 0;
    if (rc == MB_ENOMEM)
        return oom(out);
    if (rc < 0) {
        snprintf(out->message, sizeof(out->message), "%s: OpenSSL cannot verify %s signatures", digest, k->kind);
        return mb_error_set(MB_ERROR, "%s", out->message);
    }
    return refuse(out, "%s: %s does not verify with the key %s (%s)%s", digest, what, k->id, k->kind,
                  k->type == MB_PKEY_ED25519 ? ED25519PH : "");
}

/* ---- cosign v2: simple signing ------------------------------------------------------- */

int image_sig_check_simple(image_sig_verdict *out, const image_key *k, const char *digest, const void *payload,
                           size_t len, const char *sig_b64, const char *cert_pem)
{
    char show[SHOWN + 4];
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    cJSON *doc = NULL;
    bool twice = false;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!mb_sha256_digest_valid(digest))
        return refuse(out, "the digest to verify is not sha256:<64 lowercase hex>");
    if (len > IMAGE_SIG_MAX_PAYLOAD)
        return refuse(out, "%s: the signature payload is %zu bytes, more than the %d a cosign signature may have",
                      digest, len, IMAGE_SIG_MAX_PAYLOAD);
    if (!sig_b64 || !sig_b64[0])
        return refuse(out, "%s: the signature layer has no dev.cosignproject.cosign/signature annotation", digest);
    if ((rc = b64_decode(&sig, &sig_len, sig_b64)) == MB_ENOMEM)
        return oom(out);
    if (rc < 0)
        return refuse(out, "%s: the signature annotation dev.cosignproject.cosign/signature is not valid base64",
                      digest);
    rc = key_verifies(k, payload, len, sig, sig_len);
    if (rc == 0 && cert_pem && cert_pem[0]) {
        rc = refuse(out, "%s: the signature does not verify with the key %s and carries a certificate: " KEYLESS,
                    digest, k->id);
        goto done;
    }
    if ((rc = judge_verify(rc, out, k, digest, "the signature")) < 0)
        goto done;

    if ((rc = parse_object(&doc, out, digest, payload, len, "signature payload")) < 0)
        goto done;
    const cJSON *critical = member(doc, "critical", &twice);
    const char *type = member_str(critical, "type", &twice);
    const char *signed_digest = member_str(member(critical, "image", &twice), "docker-manifest-digest", &twice);
    if (twice) {
        rc = refuse(out, "%s: the signature payload has a member twice", digest);
        goto done;
    }
    if (!type || strcmp(type, SIMPLE_TYPE) != 0) {
        rc = refuse(out, "%s: the signature payload's critical.type is %s, not \"" SIMPLE_TYPE "\"", digest,
                    type ? mb_text_shown(show, SHOWN, type) : "missing");
        goto done;
    }
    if (!signed_digest) {
        rc = refuse(out, "%s: the signature payload has no critical.image.docker-manifest-digest", digest);
        goto done;
    }
    if (strcmp(signed_digest, digest) != 0) {
        rc = refuse(out, "%s: the signature is for another image, %s (a moved tag or a copied signature)", digest,
                    mb_text_shown(show, SHOWN, signed_digest));
        goto done;
    }
    mb_sha256_digest(out->payload_sha256, payload, len);
    if (!out->payload_sha256[7])
        rc = oom(out);
done:
    if (rc < 0)
        out->payload_sha256[0] = '\0';
    free(sig);
    cJSON_Delete(doc);
    return rc;
}

/* ---- DSSE and in-toto --------------------------------------------------------------- */

/* What an in-toto statement must show: the digest as a subject, and the predicate type. */
typedef struct {
    const char *digest;
    const char *predicate_type; /* NULL: cosign's signature predicate */
    const char *what;           /* "attestation" or "signature", for messages */
} wanted;

/* PAE(type, body) of DSSE v1 into *out. 0 or MB_ENOMEM. */
static int pae(unsigned char **out, size_t *out_len, const char *type, const unsigned char *body, size_t body_len)
{
    char head[64];
    size_t tlen = strlen(type);
    int h1 = snprintf(head, sizeof(head), "DSSEv1 %zu ", tlen);
    char mid[32];
    int h2 = snprintf(mid, sizeof(mid), " %zu ", body_len);
    size_t n = (size_t)h1 + tlen + (size_t)h2 + body_len;
    unsigned char *p = malloc(n + 1);
    if (!p)
        return MB_ENOMEM;
    memcpy(p, head, (size_t)h1);
    memcpy(p + h1, type, tlen);
    memcpy(p + (size_t)h1 + tlen, mid, (size_t)h2);
    if (body_len)
        memcpy(p + (size_t)h1 + tlen + (size_t)h2, body, body_len);
    *out = p;
    *out_len = n;
    return 0;
}

/* The statement's subject[] holds digest.sha256 == hex. */
static bool subject_has(const cJSON *subjects, const char *hex, bool *twice)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, subjects) {
        const char *sha = member_str(member(s, "digest", twice), "sha256", twice);
        if (sha && strcmp(sha, hex) == 0)
            return true;
    }
    return false;
}

/* Judges the verified statement (JSON text) against w. 0, MB_EINVAL, MB_ENOMEM. */
static int check_statement(image_sig_verdict *out, const wanted *w, const unsigned char *text, size_t len)
{
    char show[SHOWN + 4], show2[SHOWN + 4];
    cJSON *doc = NULL;
    bool twice = false;
    int rc;

    if ((rc = parse_object(&doc, out, w->digest, text, len, "DSSE payload (in-toto statement)")) < 0)
        return rc;
    const char *type = member_str(doc, "_type", &twice);
    const char *pt = member_str(doc, "predicateType", &twice);
    const cJSON *subjects = member(doc, "subject", &twice);
    const char *want = w->predicate_type ? w->predicate_type : IMAGE_SIG_COSIGN_SIGN_PREDICATE;
    if (twice)
        rc = refuse(out, "%s: the in-toto statement of the %s has a member twice", w->digest, w->what);
    else if (!type || (strcmp(type, "https://in-toto.io/Statement/v1") != 0 &&
                       strcmp(type, "https://in-toto.io/Statement/v0.1") != 0))
        rc = refuse(out,
                    "%s: the %s's payload is not an in-toto statement (_type %s, not "
                    "https://in-toto.io/Statement/v1 or v0.1)",
                    w->digest, w->what, type ? mb_text_shown(show, SHOWN, type) : "missing");
    else if (!pt || strcmp(pt, want) != 0)
        rc = refuse(out, "%s: the %s's predicateType is %s, not %s", w->digest, w->what,
                    pt ? mb_text_shown(show, SHOWN, pt) : "missing", mb_text_shown(show2, SHOWN, want));
    else if (!cJSON_IsArray(subjects))
        rc = refuse(out, "%s: the in-toto statement of the %s has no subject array", w->digest, w->what);
    else if (!subject_has(subjects, w->digest + 7, &twice) || twice)
        rc = refuse(out,
                    "%s: the %s's in-toto statement does not name this digest as its subject (signed for "
                    "another image)",
                    w->digest, w->what);
    cJSON_Delete(doc);
    return rc;
}

/*
 * A DSSE envelope (the JSON object env) signed by k whose in-toto statement
 * fits w. Any one signature that verifies is enough. 0, MB_EINVAL, MB_ENOMEM.
 */
static int check_dsse(image_sig_verdict *out, const image_key *k, const wanted *w, const cJSON *env)
{
    char show[SHOWN + 4];
    unsigned char *body = NULL, *msg = NULL, *sig = NULL;
    size_t body_len = 0, msg_len = 0, sig_len = 0;
    bool twice = false;
    int rc = 0, verified = 0;

    const char *type = member_str(env, "payloadType", &twice);
    const char *payload = member_str(env, "payload", &twice);
    const cJSON *sigs = member(env, "signatures", &twice);
    if (twice)
        return refuse(out, "%s: the DSSE envelope of the %s has a member twice", w->digest, w->what);
    if (!type || !payload || !cJSON_IsArray(sigs))
        return refuse(out, "%s: the DSSE envelope of the %s lacks payloadType, payload or signatures", w->digest,
                      w->what);
    int n = cJSON_GetArraySize(sigs);
    if (n == 0)
        return refuse(out, "%s: the DSSE envelope of the %s has no signature", w->digest, w->what);
    if (n > MAX_SIGNATURES)
        return refuse(out, "%s: the DSSE envelope of the %s has %d signatures, more than %d", w->digest, w->what, n,
                      MAX_SIGNATURES);
    if ((rc = b64_decode(&body, &body_len, payload)) == MB_ENOMEM)
        return oom(out);
    if (rc < 0)
        return refuse(out, "%s: the DSSE envelope's payload is not valid base64", w->digest);
    if ((rc = pae(&msg, &msg_len, type, body, body_len)) < 0) {
        rc = oom(out);
        goto done;
    }
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sigs) {
        const char *b64 = member_str(s, "sig", &twice);
        const cJSON *keyid = member(s, "keyid", &twice);
        if (twice || !b64 || (keyid && !cJSON_IsString(keyid) && !cJSON_IsNull(keyid))) {
            rc = refuse(out, "%s: signatures[%d] of the DSSE envelope is not {keyid, sig} strings", w->digest, i);
            goto done;
        }
        free(sig);
        sig = NULL;
        if ((rc = b64_decode(&sig, &sig_len, b64)) == MB_ENOMEM) {
            rc = oom(out);
            goto done;
        }
        if (rc < 0) {
            rc = refuse(out, "%s: signatures[%d].sig of the DSSE envelope is not valid base64", w->digest, i);
            goto done;
        }
        if (!verified) {
            int v = key_verifies(k, msg, msg_len, sig, sig_len);
            if (v < 0) {
                rc = judge_verify(v, out, k, w->digest, "");
                goto done;
            }
            verified = v;
        }
        i++;
    }
    if (!verified) {
        rc = refuse(out, "%s: no signature of the %s's DSSE envelope verifies with the key %s (%s)%s", w->digest,
                    w->what, k->id, k->kind, k->type == MB_PKEY_ED25519 ? ED25519PH : "");
        goto done;
    }
    if (strcmp(type, INTOTO_PAYLOAD_TYPE) != 0) {
        rc = refuse(out,
                    "%s: the DSSE envelope of the %s carries %s, not an in-toto statement (" INTOTO_PAYLOAD_TYPE ")",
                    w->digest, w->what, mb_text_shown(show, SHOWN, type));
        goto done;
    }
    if ((rc = check_statement(out, w, body, body_len)) < 0)
        goto done;
    mb_sha256_digest(out->payload_sha256, body, body_len);
    if (!out->payload_sha256[7])
        rc = oom(out);
done:
    free(body);
    free(msg);
    free(sig);
    return rc;
}

static int check_start(image_sig_verdict *out, const char *digest, size_t len, const char *what)
{
    memset(out, 0, sizeof(*out));
    if (!mb_sha256_digest_valid(digest))
        return refuse(out, "the digest to verify is not sha256:<64 lowercase hex>");
    if (len > IMAGE_SIG_MAX_DOCUMENT)
        return refuse(out, "%s: the %s is %zu bytes, more than the %d accepted", digest, what, len,
                      IMAGE_SIG_MAX_DOCUMENT);
    return 0;
}

int image_sig_check_envelope(image_sig_verdict *out, const image_key *k, const char *digest, const char *envelope,
                             size_t len, const char *predicate_type)
{
    cJSON *doc = NULL;
    int rc;
    wanted w = {digest, predicate_type, predicate_type ? "attestation" : "signature"};

    if ((rc = check_start(out, digest, len, "DSSE envelope")) < 0)
        return rc;
    if ((rc = parse_object(&doc, out, digest, envelope, len, "DSSE envelope")) == 0)
        rc = check_dsse(out, k, &w, doc);
    if (rc < 0)
        out->payload_sha256[0] = '\0';
    cJSON_Delete(doc);
    return rc;
}

/* ---- cosign v3: the sigstore bundle --------------------------------------------------- */

static bool bundle_media_type_ok(const char *t)
{
    return strcmp(t, "application/vnd.dev.sigstore.bundle.v0.3+json") == 0 ||
           strcmp(t, "application/vnd.dev.sigstore.bundle+json;version=0.3") == 0 ||
           strcmp(t, "application/vnd.dev.sigstore.bundle+json;version=0.2") == 0 ||
           strcmp(t, "application/vnd.dev.sigstore.bundle+json;version=0.1") == 0;
}

/* A messageSignature over the image digest itself (as `cosign sign-blob` writes for a blob). */
static int check_message_signature(image_sig_verdict *out, const image_key *k, const char *digest, const cJSON *ms,
                                   const char *bundle, size_t len)
{
    char show[SHOWN + 4];
    unsigned char *hash = NULL, *sig = NULL;
    size_t hash_len = 0, sig_len = 0;
    bool twice = false;
    int rc;

    const cJSON *md = member(ms, "messageDigest", &twice);
    const char *alg = member_str(md, "algorithm", &twice);
    const char *hash_b64 = member_str(md, "digest", &twice);
    const char *sig_b64 = member_str(ms, "signature", &twice);
    if (twice)
        return refuse(out, "%s: the bundle's messageSignature has a member twice", digest);
    if (!alg || !hash_b64 || !sig_b64)
        return refuse(out,
                      "%s: the bundle's messageSignature lacks messageDigest.algorithm, messageDigest.digest "
                      "or signature",
                      digest);
    if (strcmp(alg, "SHA2_256") != 0)
        return refuse(out, "%s: the bundle's messageSignature is over a %s digest, not the image's SHA2_256", digest,
                      mb_text_shown(show, SHOWN, alg));
    if ((rc = b64_decode(&hash, &hash_len, hash_b64)) < 0 || (rc = b64_decode(&sig, &sig_len, sig_b64)) < 0) {
        rc = rc == MB_ENOMEM
                 ? oom(out)
                 : refuse(out, "%s: the bundle's messageSignature holds a value that is not base64", digest);
        goto done;
    }
    unsigned char want[32];
    for (size_t i = 0; i < 32; i++) {
        unsigned hi = (unsigned)(digest[7 + 2 * i] <= '9' ? digest[7 + 2 * i] - '0' : digest[7 + 2 * i] - 'a' + 10);
        unsigned lo = (unsigned)(digest[8 + 2 * i] <= '9' ? digest[8 + 2 * i] - '0' : digest[8 + 2 * i] - 'a' + 10);
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    if (hash_len != 32 || memcmp(hash, want, 32) != 0) {
        rc = refuse(out, "%s: the bundle's messageSignature is over another digest (signed for another image)", digest);
        goto done;
    }
    if (k->type == MB_PKEY_ED25519) {
        rc = refuse(out,
                    "%s: the bundle's messageSignature signs a digest, which an Ed25519 key cannot be verified "
                    "over; sign the image with cosign sign",
                    digest);
        goto done;
    }
    mb_pkey_scheme s = {.digest = "SHA256"};
    rc = mb_pkey_verify_digest(k->pkey, &s, hash, hash_len, sig, sig_len);
    if (rc == 0 && k->type == MB_PKEY_RSA) {
        s.pss = true;
        s.pss_saltlen = RSA_PSS_SALTLEN_AUTO;
        rc = mb_pkey_verify_digest(k->pkey, &s, hash, hash_len, sig, sig_len);
    }
    if ((rc = judge_verify(rc, out, k, digest, "the bundle's messageSignature")) < 0)
        goto done;
    /* no payload: the bundle is what was verified */
    mb_sha256_digest(out->payload_sha256, bundle, len);
    if (!out->payload_sha256[7])
        rc = oom(out);
done:
    free(hash);
    free(sig);
    return rc;
}

int image_sig_check_bundle(image_sig_verdict *out, const image_key *k, const char *digest, const char *bundle,
                           size_t len, const char *predicate_type)
{
    char show[SHOWN + 4];
    cJSON *doc = NULL;
    bool twice = false;
    int rc;
    wanted w = {digest, predicate_type, predicate_type ? "attestation" : "signature"};

    if ((rc = check_start(out, digest, len, "sigstore bundle")) < 0)
        return rc;
    if ((rc = parse_object(&doc, out, digest, bundle, len, "sigstore bundle")) < 0)
        goto done;
    const char *media = member_str(doc, "mediaType", &twice);
    const cJSON *vm = member(doc, "verificationMaterial", &twice);
    const cJSON *ms = member(doc, "messageSignature", &twice);
    const cJSON *env = member(doc, "dsseEnvelope", &twice);
    bool has_key = member(vm, "publicKey", &twice) != NULL;
    bool has_cert = member(vm, "certificate", &twice) || member(vm, "x509CertificateChain", &twice);
    if (twice) {
        rc = refuse(out, "%s: the sigstore bundle has a member twice", digest);
        goto done;
    }
    if (!media || !bundle_media_type_ok(media)) {
        rc = refuse(out,
                    "%s: the sigstore bundle's mediaType is %s, not application/vnd.dev.sigstore.bundle.v0.3+json "
                    "(or v0.1, v0.2)",
                    digest, media ? mb_text_shown(show, SHOWN, media) : "missing");
        goto done;
    }
    if (!has_key && has_cert) {
        rc = refuse(out, "%s: the sigstore bundle is signed keyless: " KEYLESS, digest);
        goto done;
    }
    if (!has_key) {
        rc = refuse(out, "%s: the sigstore bundle's verificationMaterial names no publicKey", digest);
        goto done;
    }
    if ((ms != NULL) == (env != NULL)) {
        rc = refuse(out, "%s: the sigstore bundle must hold exactly one of messageSignature and dsseEnvelope", digest);
        goto done;
    }
    if (ms && predicate_type) {
        rc = refuse(out, "%s: the sigstore bundle holds a signature (messageSignature), not an attestation of %s",
                    digest, mb_text_shown(show, SHOWN, predicate_type));
        goto done;
    }
    if (!cJSON_IsObject(ms ? ms : env)) {
        rc = refuse(out, "%s: the sigstore bundle's %s is not an object", digest,
                    ms ? "messageSignature" : "dsseEnvelope");
        goto done;
    }
    rc = ms ? check_message_signature(out, k, digest, ms, bundle, len) : check_dsse(out, k, &w, env);
done:
    if (rc < 0)
        out->payload_sha256[0] = '\0';
    cJSON_Delete(doc);
    return rc;
}
