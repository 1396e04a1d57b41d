/*
 * The throw-away PKI of testpki.h: P-256 keys and X.509 certificates made and
 * signed with OpenSSL, valid from an hour ago for a day, written out as PEM.
 */
#include "testpki.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) {
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
    }
    return s;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = b && PEM_write_bio_X509(b, x) ? bio_string(b) : NULL;
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) ? bio_string(b) : NULL;
    BIO_free(b);
    return s;
}

static int ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/*
 * A certificate for key with common name cn, signed by issuer_key (self-signed
 * when issuer is NULL). san may be NULL.
 */
static X509 *cert_make(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca, const char *san,
                       bool client, long serial)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer ? issuer : x;
    int err = 0;
    if (ca) {
        err |= ext_add(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        err |= ext_add(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
        err |= ext_add(x, signer, NID_subject_key_identifier, "hash");
    } else {
        err |= ext_add(x, signer, NID_basic_constraints, "critical,CA:FALSE");
        err |= ext_add(x, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        err |= ext_add(x, signer, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
        err |= ext_add(x, signer, NID_authority_key_identifier, "keyid");
        if (san)
            err |= ext_add(x, signer, NID_subject_alt_name, san);
    }
    if (err || !X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int testpki_make(testpki *out, const char *server_san)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *srv_key = EVP_EC_gen("P-256");
    EVP_PKEY *cli_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    X509 *ca = NULL, *srv = NULL, *cli = NULL, *other = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!ca_key || !srv_key || !cli_key || !other_key)
        goto done;
    if (!(ca = cert_make(ca_key, "membrane-test-ca", NULL, NULL, true, NULL, false, 1)) ||
        !(other = cert_make(other_key, "membrane-other-ca", NULL, NULL, true, NULL, false, 2)) ||
        !(srv = cert_make(srv_key, "kube-apiserver", ca, ca_key, false, server_san, false, 3)) ||
        !(cli = cert_make(cli_key, "membrane-test-client", ca, ca_key, false, NULL, true, 4)))
        goto done;
    out->ca_cert = cert_pem(ca);
    out->other_ca_cert = cert_pem(other);
    out->server_cert = cert_pem(srv);
    out->server_key = key_pem(srv_key);
    out->client_cert = cert_pem(cli);
    out->client_key = key_pem(cli_key);
    if (out->ca_cert && out->other_ca_cert && out->server_cert && out->server_key && out->client_cert &&
        out->client_key)
        rc = 0;
done:
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
    EVP_PKEY_free(other_key);
    if (rc < 0)
        testpki_clear(out);
    return rc;
}

void testpki_clear(testpki *p)
{
    free(p->ca_cert);
    free(p->server_cert);
    free(p->server_key);
    free(p->client_cert);
    free(p->client_key);
    free(p->other_ca_cert);
    memset(p, 0, sizeof(*p));
}
