/*
 * OPA bundle signatures (bundle/verify.go, hash.go, sign.go of OPA v1.22):
 * .signatures.json is {"signatures": ["<JWS compact>"]} with exactly one JWS
 * (OPA refuses none and more than one); its payload is
 * {"files": [{"name", "hash", "algorithm"}], "keyid"?, "scope"?, "iat"?, "iss"?}.
 * File names in the payload carry no leading "/" (OPA strips the one its
 * writer puts on tar entries), so they are compared with bundle_file.name as
 * they are.
 *
 * Hashes, as OPA computes them: the raw bytes of every file, but for the
 * structured documents (base name data.json, data.yaml, data.yml, .manifest),
 * which are parsed and hashed in OPA's own canonical form: objects as "{" then
 * "key":value pairs sorted by the key's bytes, joined by ",", then "}"; arrays
 * as "[" values joined by "," "]"; strings and keys as Go's encoding/json
 * writes them without HTML escaping (\" \\ \b \f \n \r \t, other controls as
 * \u00xx, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD, the rest as
 * UTF-8); numbers as the literal the file holds (OPA decodes with UseNumber);
 * true, false, null. This is not RFC 8785 (audit/canonical.c): that one writes
 * numbers by value, sorts keys by UTF-16 units and leaves U+2028/U+2029 alone.
 * A data.yaml that is not JSON is parsed as YAML and its numbers written as
 * Go writes a float64 (shortest form, exponent below 1e-6 and from 1e21).
 *
 * The JWS is verified (util/pkey.h) against the one configured public key,
 * with the algorithm its header names, which must fit the key: RS*, PS* (salt
 * length = digest length) on RSA, ES256/ES384 on P-256/P-384 (raw r||s turned
 * into DER), EdDSA on Ed25519; "none", HS* and anything else are refused.
 */
#include "policy/bundle.h"
#include "util/text.h"
#include "policy/bundle_private.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/gojson.h"
#include "util/pkey.h"
#include "util/yaml.h"

#include <math.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN 120

static int fail(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, BUNDLE_ERROR_MAX, fmt, ap);
    va_end(ap);
    return mb_error_set(code, "%s", err);
}

static int oom(char *err)
{
    return fail(err, MB_ENOMEM, "out of memory while verifying the bundle's signature");
}

/* ---- OPA's canonical form of structured documents ------------------------------ */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} buf;

static int put(buf *b, const void *s, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2)
                return MB_ENOMEM;
            cap *= 2;
        }
        unsigned char *d = realloc(b->data, cap);
        if (!d)
            return MB_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int puts_(buf *b, const char *s)
{
    return put(b, s, strlen(s));
}

/* The length of the well-formed UTF-8 sequence at s (Go's utf8.DecodeRune), or 0; its code point in *cp. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, c = s[0] & 0x1f, min = 0x80;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, c = s[0] & 0x0f, min = 0x800;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, c = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* A string as Go's json.Encoder with SetEscapeHTML(false) writes it. */
static int put_string(buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    int rc = put(b, "\"", 1);
    for (size_t i = 0; i < n && !rc;) {
        uint32_t cp = 0;
        size_t l = utf8_seq(s + i, n - i, &cp);
        if (l == 0) {
            rc = put(b, "\xef\xbf\xbd", 3); /* Go's decoder made U+FFFD of the byte */
            i++;
            continue;
        }
        char esc[8];
        if (cp == '"')
            rc = put(b, "\\\"", 2);
        else if (cp == '\\')
            rc = put(b, "\\\\", 2);
        else if (cp == '\b')
            rc = put(b, "\\b", 2);
        else if (cp == '\f')
            rc = put(b, "\\f", 2);
        else if (cp == '\n')
            rc = put(b, "\\n", 2);
        else if (cp == '\r')
            rc = put(b, "\\r", 2);
        else if (cp == '\t')
            rc = put(b, "\\t", 2);
        else if (cp < 0x20 || cp == 0x2028 || cp == 0x2029) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
            rc = put(b, esc, 6);
        } else
            rc = put(b, s + i, l);
        i += l;
    }
    return rc ? rc : put(b, "\"", 1);
}

/* A float64 as Go's encoding/json writes it; MB_EINVAL for NaN and infinities (Go refuses them). */
static int put_float(buf *b, double d)
{
    char digits[40], out[64];
    int exp10 = 0;
    if (!isfinite(d))
        return MB_EINVAL;
    if (d == 0)
        return puts_(b, signbit(d) ? "-0" : "0");
    /* the shortest %e that reads back as d */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof(digits), "%.*e", prec - 1, d);
        if (strtod(digits, NULL) == d)
            break;
    }
    char *e = strchr(digits, 'e');
    exp10 = atoi(e + 1);
    *e = '\0';
    char mant[24];
    size_t k = 0;
    for (const char *p = digits; *p; p++)
        if (*p >= '0' && *p <= '9')
            mant[k++] = *p;
    mant[k] = '\0';
    size_t o = 0;
    if (d < 0)
        out[o++] = '-';
    double a = fabs(d);
    if (a < 1e-6 || a >= 1e21) {
        /* 'e' form: d[.ddd]e±dd, then Go trims e-0d to e-d */
        out[o++] = mant[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, mant + 1, k - 1);
            o += k - 1;
        }
        int x = exp10 < 0 ? -exp10 : exp10;
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%s%d", exp10 < 0 ? '-' : '+',
                              x < 10 && exp10 >= 0 ? "0" : "", x);
    } else if (exp10 >= (int)k - 1) {
        /* an integer: the digits, then zeros */
        memcpy(out + o, mant, k);
        o += k;
        for (int z = exp10 - ((int)k - 1); z > 0; z--)
            out[o++] = '0';
    } else if (exp10 >= 0) {
        memcpy(out + o, mant, (size_t)exp10 + 1);
        o += (size_t)exp10 + 1;
        out[o++] = '.';
        memcpy(out + o, mant + exp10 + 1, k - (size_t)exp10 - 1);
        o += k - (size_t)exp10 - 1;
    } else {
        out[o++] = '0';
        out[o++] = '.';
        for (int z = -exp10 - 1; z > 0; z--)
            out[o++] = '0';
        memcpy(out + o, mant, k);
        o += k;
    }
    out[o] = '\0';
    return puts_(b, out);
}

typedef struct {
    const cJSON *v;
    size_t pos;
} member;

static int cmp_members(const void *x, const void *y)
{
    const member *a = x, *b = y;
    int c = strcmp(a->v->string, b->v->string);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

static int put_value(buf *b, const cJSON *v, int depth);

/* Members sorted by name; of two with one name the last, as Go's map keeps it. */
static int put_object(buf *b, const cJSON *v, int depth)
{
    size_t n = 0, i = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        n++;
    member *m = n ? malloc(n * sizeof(*m)) : NULL;
    if (n && !m)
        return MB_ENOMEM;
    for (const cJSON *c = v->child; c; c = c->next, i++)
        m[i] = (member){c, i};
    if (n)
        qsort(m, n, sizeof(*m), cmp_members);
    int rc = put(b, "{", 1);
    bool first = true;
    for (i = 0; i < n && !rc; i++) {
        if (i + 1 < n && strcmp(m[i].v->string, m[i + 1].v->string) == 0)
            continue;
        if (!first)
            rc = put(b, ",", 1);
        first = false;
        if (!rc)
            rc = put_string(b, m[i].v->string);
        if (!rc)
            rc = put(b, ":", 1);
        if (!rc)
            rc = put_value(b, m[i].v, depth + 1);
    }
    free(m);
    return rc ? rc : put(b, "}", 1);
}

static int put_value(buf *b, const cJSON *v, int depth)
{
    if (depth > 10000)
        return MB_EINVAL;
    switch (v->type & 0xff) {
    case cJSON_NULL: return puts_(b, "null");
    case cJSON_True: return puts_(b, "true");
    case cJSON_False: return puts_(b, "false");
    case cJSON_Raw: return puts_(b, v->valuestring);
    case cJSON_Number: return put_float(b, v->valuedouble);
    case cJSON_String: return put_string(b, v->valuestring);
    case cJSON_Array: {
        int rc = put(b, "[", 1);
        for (const cJSON *c = v->child; c && !rc; c = c->next) {
            if (c != v->child)
                rc = put(b, ",", 1);
            if (!rc)
                rc = put_value(b, c, depth + 1);
        }
        return rc ? rc : put(b, "]", 1);
    }
    case cJSON_Object: return put_object(b, v, depth);
    default: return MB_EINVAL;
    }
}

static bool structured(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    return strcmp(base, "data.json") == 0 || strcmp(base, "data.yaml") == 0 || strcmp(base, "data.yml") == 0 ||
           strcmp(base, ".manifest") == 0;
}

/* The bytes OPA hashes for the structured file f: its canonical form. */
static int canonical_of(const bundle_file *f, buf *out)
{
    const unsigned char *text = f->data;
    size_t len = f->len;
    cJSON *doc = NULL;
    int rc;

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) /* util.Unmarshal drops a UTF-8 BOM */
        text += 3, len -= 3;
    /* util.Unmarshal: JSON when it is JSON, else YAML (bundle_read lets only data.yaml/.yml be YAML) */
    rc = mb_gojson_parse(&doc, text, len, true);
    if (rc == MB_EINVAL)
        rc = mb_yaml_parse(&doc, (const char *)text, len, "data");
    if (rc < 0)
        return rc;
    rc = put_value(out, doc, 0);
    cJSON_Delete(doc);
    return rc;
}

/* ---- hashes ------------------------------------------------------------------------ */

static const EVP_MD *hash_md(const char *alg)
{
    if (strcmp(alg, "SHA-256") == 0)
        return EVP_sha256();
    if (strcmp(alg, "SHA-224") == 0)
        return EVP_sha224();
    if (strcmp(alg, "SHA-384") == 0)
        return EVP_sha384();
    if (strcmp(alg, "SHA-512") == 0)
        return EVP_sha512();
    if (strcmp(alg, "SHA-512-224") == 0)
        return EVP_sha512_224();
    if (strcmp(alg, "SHA-512-256") == 0)
        return EVP_sha512_256();
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks f against one entry of the payload's files. */
static int check_file(const bundle_file *f, const cJSON *entry, char *err)
{
    char name[SHOWN + 4], what[SHOWN + 4];
    const char *alg = cJSON_GetObjectItemCaseSensitive(entry, "algorithm")->valuestring;
    const char *hex = cJSON_GetObjectItemCaseSensitive(entry, "hash")->valuestring;
    unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
    unsigned int got_len = 0;
    buf canon = {0};
    int rc = 0;

    mb_text_shown(name, SHOWN, f->name);
    if (!alg[0])
        return fail(err, MB_EINVAL, "file %s: .signatures.json names no hashing algorithm for it", name);
    if (strcmp(alg, "MD5") == 0 || strcmp(alg, "SHA-1") == 0)
        return fail(err, MB_EINVAL, "file %s: hashing algorithm %s is too weak to trust; sign with SHA-256", name, alg);
    const EVP_MD *md = hash_md(alg);
    if (!md)
        return fail(err, MB_EINVAL, "file %s: unsupported hashing algorithm %s", name, mb_text_shown(what, SHOWN, alg));
    size_t hex_len = strlen(hex), md_len = (size_t)EVP_MD_get_size(md);
    if (hex_len != 2 * md_len)
        return fail(err, MB_EINVAL, "file %s: its hash in .signatures.json is not %zu hex digits", name, 2 * md_len);
    for (size_t i = 0; i < md_len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(err, MB_EINVAL, "file %s: its hash in .signatures.json is not hex", name);
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    const void *data = f->data;
    size_t len = f->len;
    if (structured(f->name)) {
        if ((rc = canonical_of(f, &canon)) < 0) {
            free(canon.data);
            if (rc == MB_ENOMEM)
                return oom(err);
            return fail(err, MB_EINVAL, "file %s: cannot be hashed as OPA hashes it (not valid JSON or YAML)", name);
        }
        data = canon.data ? (const void *)canon.data : "";
        len = canon.len;
    }
    if (!EVP_Digest(data, len, got, &got_len, md, NULL))
        rc = oom(err);
    else if (got_len != md_len || memcmp(got, want, md_len) != 0)
        rc = fail(err, MB_EINVAL, "file %s changed after signing (hash mismatch)", name);
    free(canon.data);
    return rc;
}

/* ---- the JWS ----------------------------------------------------------------------- */

typedef struct {
    const char *alg;
    int key_type;      /* EVP_PKEY_RSA, EVP_PKEY_EC, EVP_PKEY_ED25519 */
    const char *curve; /* EC: the group name */
    mb_pkey_scheme scheme;
} jws_alg;

#define RS(d)                                                                                                          \
    {                                                                                                                  \
        d, false, 0, MB_PKEY_ECDSA_DER, 0                                                                              \
    }
#define PS(d)                                                                                                          \
    {                                                                                                                  \
        d, true, RSA_PSS_SALTLEN_DIGEST, MB_PKEY_ECDSA_DER, 0                                                          \
    }
#define ES(d, half)                                                                                                    \
    {                                                                                                                  \
        d, false, 0, MB_PKEY_ECDSA_RAW, half                                                                           \
    }

static const jws_alg JWS_ALGS[] = {
    {"RS256", EVP_PKEY_RSA, NULL, RS("SHA256")},       {"RS384", EVP_PKEY_RSA, NULL, RS("SHA384")},
    {"RS512", EVP_PKEY_RSA, NULL, RS("SHA512")},       {"PS256", EVP_PKEY_RSA, NULL, PS("SHA256")},
    {"PS384", EVP_PKEY_RSA, NULL, PS("SHA384")},       {"PS512", EVP_PKEY_RSA, NULL, PS("SHA512")},
    {"ES256", EVP_PKEY_EC, "P-256", ES("SHA256", 32)}, {"ES384", EVP_PKEY_EC, "P-384", ES("SHA384", 48)},
    {"EdDSA", EVP_PKEY_ED25519, NULL, RS(NULL)},
};

typedef struct {
    char *header, *payload;
    unsigned char *sig;
    size_t header_len, payload_len, sig_len;
    cJSON *hdr, *claims;
    EVP_PKEY *key;
} jws;

static void jws_free(jws *j)
{
    free(j->header);
    free(j->payload);
    free(j->sig);
    cJSON_Delete(j->hdr);
    cJSON_Delete(j->claims);
    EVP_PKEY_free(j->key);
}

/* A member that must be a string when present: its value, "" when absent; NULL when of another type. */
static const char *opt_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v || cJSON_IsNull(v))
        return "";
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int decode_part(char **out, size_t *out_len, const char *s, size_t n, const char *part, char *err)
{
    int rc = mb_base64url_decode(out, out_len, s, n);
    if (rc == MB_ENOMEM)
        return oom(err);
    if (rc < 0)
        return fail(err, MB_EINVAL, ".signatures.json: the JWT's %s is not valid base64url", part);
    return 0;
}

static int parse_part(cJSON **out, const char *text, size_t len, bool number_text, const char *part, char *err)
{
    int rc = mb_gojson_parse(out, (const unsigned char *)text, len, number_text);
    if (rc == MB_ENOMEM)
        return oom(err);
    if (rc < 0 || !cJSON_IsObject(*out))
        return fail(err, MB_EINVAL, ".signatures.json: the JWT's %s is not a JSON object", part);
    return 0;
}

/* Splits, decodes and checks the JWS token against s; leaves the claims in j. */
static int verify_jws(jws *j, const char *token, const bundle_signing *s, char *err)
{
    char show[SHOWN + 4], show2[SHOWN + 4];
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    int rc;

    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return fail(err, MB_EINVAL, ".signatures.json: the JWT is not three dot-separated parts (JWS compact)");
    if ((rc = decode_part(&j->header, &j->header_len, token, (size_t)(dot1 - token), "header", err)) < 0 ||
        (rc = decode_part(&j->payload, &j->payload_len, dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", err)) < 0 ||
        (rc = decode_part((char **)&j->sig, &j->sig_len, dot2 + 1, strlen(dot2 + 1), "signature", err)) < 0)
        return rc;
    if ((rc = parse_part(&j->hdr, j->header, j->header_len, false, "header", err)) < 0 ||
        (rc = parse_part(&j->claims, j->payload, j->payload_len, false, "payload", err)) < 0)
        return rc;

    const char *alg = opt_string(j->hdr, "alg");
    const char *kid = opt_string(j->hdr, "kid");
    const char *keyid = opt_string(j->claims, "keyid");
    const char *scope = opt_string(j->claims, "scope");
    if (!alg || !alg[0])
        return fail(err, MB_EINVAL, ".signatures.json: the JWT's header has no alg");
    if (!kid)
        return fail(err, MB_EINVAL, ".signatures.json: the JWT's header kid is not a string");
    if (!keyid || !scope || !opt_string(j->claims, "iss"))
        return fail(err, MB_EINVAL,
                    ".signatures.json: the JWT's payload has a keyid, scope or iss that is not a string");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(j->claims, "iat");
    if (iat && !cJSON_IsNull(iat) && !cJSON_IsNumber(iat))
        return fail(err, MB_EINVAL, ".signatures.json: the JWT's payload has an iat that is not a number");

    const jws_alg *a = NULL;
    for (size_t i = 0; i < sizeof(JWS_ALGS) / sizeof(JWS_ALGS[0]); i++)
        if (strcmp(JWS_ALGS[i].alg, alg) == 0)
            a = &JWS_ALGS[i];
    if (!a)
        return fail(err, MB_EINVAL,
                    ".signatures.json: the JWT's alg %s is not accepted (RS256/384/512, PS256/384/512, ES256/384, "
                    "EdDSA)",
                    mb_text_shown(show, SHOWN, alg));
    if (s->public_key_pem &&
        (rc = mb_pkey_load(&j->key, s->public_key_pem, strlen(s->public_key_pem), MB_PKEY_CERT)) == MB_ENOMEM)
        return oom(err);
    if (!j->key)
        return fail(err, MB_EINVAL,
                    "spec.signing.publicKeySecretRef does not hold a PEM public key (RSA, ECDSA P-256/P-384 or "
                    "Ed25519)");
    if (EVP_PKEY_get_base_id(j->key) != a->key_type || (a->curve && !mb_pkey_ec_curve_is(j->key, a->curve))) {
        if (mb_pkey_ossl_oom())
            return oom(err);
        return fail(err, MB_EINVAL, "the JWT's alg %s does not fit %s in spec.signing.publicKeySecretRef", alg,
                    mb_pkey_kind(j->key));
    }
    /* Go's crypto/rsa (OPA) refuses keys under 1024 bits; membrane wants what is safe today */
    if (a->key_type == EVP_PKEY_RSA && EVP_PKEY_get_bits(j->key) < MB_PKEY_RSA_MIN_BITS)
        return fail(err, MB_EINVAL,
                    "spec.signing.publicKeySecretRef holds an RSA key of %d bits; at least %d are needed",
                    EVP_PKEY_get_bits(j->key), MB_PKEY_RSA_MIN_BITS);

    size_t input_len = (size_t)(dot2 - token);
    if ((rc = mb_pkey_verify(j->key, &a->scheme, token, input_len, j->sig, j->sig_len)) == MB_ENOMEM)
        return oom(err);
    if (rc < 0)
        return fail(err, MB_ERROR, "OpenSSL cannot verify %s signatures with this key", alg);
    if (rc == 0)
        return fail(err, MB_EINVAL, "signature does not verify with spec.signing.publicKeySecretRef");

    /* the key id: the header's kid, else the payload's keyid (OPA's order) */
    const char *id = kid[0] ? kid : keyid;
    if (s->key_id && s->key_id[0]) {
        if (!id[0])
            return fail(err, MB_EINVAL, "the JWT names no kid, and spec.signing.keyID is %s",
                        mb_text_shown(show, SHOWN, s->key_id));
        if (strcmp(id, s->key_id) != 0)
            return fail(err, MB_EINVAL, "kid %s differs from spec.signing.keyID %s", mb_text_shown(show, SHOWN, id),
                        mb_text_shown(show2, SHOWN, s->key_id));
    }
    if (s->scope && s->scope[0] && strcmp(scope, s->scope) != 0)
        return fail(err, MB_EINVAL, "scope %s differs from spec.signing.scope %s",
                    scope[0] ? mb_text_shown(show, SHOWN, scope) : "(none)", mb_text_shown(show2, SHOWN, s->scope));
    return 0;
}

static int cmp_entries(const void *x, const void *y)
{
    const cJSON *const *a = x, *const *b = y;
    return strcmp(cJSON_GetObjectItemCaseSensitive(*a, "name")->valuestring,
                  cJSON_GetObjectItemCaseSensitive(*b, "name")->valuestring);
}

/*
 * The payload's files: an array of {name, hash, algorithm} strings, no name
 * twice (OPA's signer never writes one twice; its reader would keep the
 * last). *sorted: the entries sorted by name, *n their count.
 */
static int files_list(const cJSON *files, const cJSON ***sorted, size_t *n, char *err)
{
    char show[SHOWN + 4];
    *sorted = NULL;
    *n = 0;
    if (!cJSON_IsArray(files))
        return fail(err, MB_EINVAL, ".signatures.json: the JWT's payload has no files array");
    int i = 0;
    for (const cJSON *f = files->child; f; f = f->next, i++)
        if (!cJSON_IsObject(f) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f, "name")) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f, "hash")) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f, "algorithm")))
            return fail(err, MB_EINVAL,
                        ".signatures.json: files[%d] of the JWT's payload is not {name, hash, algorithm} strings", i);
    if (i == 0)
        return 0;
    const cJSON **all = malloc((size_t)i * sizeof(*all));
    if (!all)
        return oom(err);
    i = 0;
    for (const cJSON *f = files->child; f; f = f->next)
        all[i++] = f;
    qsort(all, (size_t)i, sizeof(*all), cmp_entries);
    for (int k = 1; k < i; k++)
        if (cmp_entries(&all[k - 1], &all[k]) == 0) {
            int rc = fail(err, MB_EINVAL, "file %s is listed twice in .signatures.json",
                          mb_text_shown(show, SHOWN, cJSON_GetObjectItemCaseSensitive(all[k], "name")->valuestring));
            free(all);
            return rc;
        }
    *sorted = all;
    *n = (size_t)i;
    return 0;
}

static int cmp_name_entry(const void *key, const void *x)
{
    const cJSON *const *e = x;
    return strcmp(key, cJSON_GetObjectItemCaseSensitive(*e, "name")->valuestring);
}

int bundle_verify_signatures(const bundle *b, const bundle_signing *s, char err[BUNDLE_ERROR_MAX])
{
    char show[SHOWN + 4];
    cJSON *sigs = NULL;
    jws j = {0};
    bool *listed = NULL;
    const cJSON **sorted = NULL;
    int rc = 0;

    err[0] = '\0';
    ERR_clear_error();
    if (!b->signatures)
        return fail(err, MB_EINVAL, "the bundle has no .signatures.json, and spec.signing asks for one");
    rc = mb_gojson_parse(&sigs, b->signatures->data, b->signatures->len, false);
    if (rc == MB_ENOMEM)
        return oom(err);
    if (rc < 0 || !cJSON_IsObject(sigs)) {
        rc = fail(err, MB_EINVAL, ".signatures.json is not a JSON object");
        goto done;
    }
    const char *plugin = opt_string(sigs, "plugin");
    /* OPA writes "_default", its own verifier's name; another plugin is a verifier we do not have */
    if (!plugin || (plugin[0] && strcmp(plugin, "_default") != 0)) {
        rc = fail(err, MB_EINVAL, ".signatures.json: plugin %s is not supported (OPA's default format only)",
                  plugin ? mb_text_shown(show, SHOWN, plugin) : "(not a string)");
        goto done;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(sigs, "signatures");
    if (list && !cJSON_IsArray(list) && !cJSON_IsNull(list)) {
        rc = fail(err, MB_EINVAL, ".signatures.json: signatures must be an array of JWTs");
        goto done;
    }
    int count = cJSON_GetArraySize(list);
    if (count == 0) {
        rc = fail(err, MB_EINVAL, ".signatures.json holds no JWT (expected exactly one)");
        goto done;
    }
    if (count > 1) {
        rc = fail(err, MB_EINVAL, ".signatures.json holds %d JWTs; OPA supports exactly one", count);
        goto done;
    }
    if (!cJSON_IsString(list->child)) {
        rc = fail(err, MB_EINVAL, ".signatures.json: signatures[0] is not a string");
        goto done;
    }
    if ((rc = verify_jws(&j, list->child->valuestring, s, err)) < 0)
        goto done;

    const cJSON *files = cJSON_GetObjectItemCaseSensitive(j.claims, "files");
    size_t n = 0;
    if ((rc = files_list(files, &sorted, &n, err)) < 0)
        goto done;
    if (n && !(listed = calloc(n, sizeof(*listed)))) {
        rc = oom(err);
        goto done;
    }
    /* every file but .signatures.json listed with its hash, in archive order (as OPA checks) */
    for (size_t i = 0; i < b->nfiles; i++) {
        const bundle_file *f = &b->files[i];
        if (f == b->signatures)
            continue;
        const cJSON **entry = n ? bsearch(f->name, sorted, n, sizeof(*sorted), cmp_name_entry) : NULL;
        if (!entry) {
            rc = fail(err, MB_EINVAL, "file %s is not listed in .signatures.json", mb_text_shown(show, SHOWN, f->name));
            goto done;
        }
        listed[entry - sorted] = true;
        if ((rc = check_file(f, *entry, err)) < 0)
            goto done;
    }
    /* and no listed file missing: name the first in the payload's order */
    for (const cJSON *e = files->child; e; e = e->next) {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const cJSON **at = bsearch(name, sorted, n, sizeof(*sorted), cmp_name_entry);
        if (!listed[at - sorted]) {
            rc = fail(err, MB_EINVAL, "file %s listed in .signatures.json is missing from the bundle",
                      mb_text_shown(show, SHOWN, name));
            goto done;
        }
    }
done:
    free(listed);
    free(sorted);
    jws_free(&j);
    cJSON_Delete(sigs);
    return rc;
}
