/*
 * Kubernetes client credentials: reading the files a configuration names (a
 * kubeconfig, PEM, a token), checking PEM blocks with OpenSSL (certificates,
 * an unencrypted private key, a certificate and key that belong together),
 * cleaning bearer tokens, and the cache under cfg->lock from which every
 * request takes its credentials: a tokenFile (and the in-cluster token) is
 * re-read when a stat shows it changed, and an exec plugin's credential is
 * renewed (exec.c) before it expires. Tokens and keys are never logged and
 * are wiped when freed.
 */
#include "kube/config_private.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KC_MAX_FILE (16L << 20) /* a kubeconfig, PEM or token file */

/* ---- small helpers ---------------------------------------------------- */

const char *kube_errno_text(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len); /* the GNU variant: returns the text */
}

int kube_config_nomem(void)
{
    return mb_error_set(MB_ENOMEM, "out of memory while loading the Kubernetes configuration");
}

int kube_config_strdup(char **out, const char *s)
{
    *out = NULL;
    if (!s)
        return 0;
    if (!(*out = strdup(s)))
        return kube_config_nomem();
    return 0;
}

void kube_pem_clear(kube_pem *p)
{
    mb_secret_free_len(p->data, p->len);
    p->data = NULL;
    p->len = 0;
}

int kube_pem_dup(kube_pem *out, const kube_pem *src)
{
    out->data = NULL;
    out->len = 0;
    if (!src->data || !src->len)
        return 0;
    if (!(out->data = malloc(src->len + 1)))
        return kube_config_nomem();
    memcpy(out->data, src->data, src->len);
    out->data[src->len] = '\0';
    out->len = src->len;
    return 0;
}

/* ---- files ------------------------------------------------------------ */

int kube_file_read(char **out, size_t *len, const char *path, struct stat *st_out)
{
    int err = 0, fd = -1;
    char *buf = NULL, ebuf[128];
    size_t n = 0, cap = 0;
    struct stat st;

    *out = NULL;
    *len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        int e = errno;
        return mb_error_set(e == ENOENT ? MB_ENOTFOUND : MB_EIO, "cannot read %s: %s", path,
                            kube_errno_text(e, ebuf, sizeof(ebuf)));
    }
    if (fstat(fd, &st) < 0) {
        err = mb_error_set(MB_EIO, "cannot read %s: %s", path, kube_errno_text(errno, ebuf, sizeof(ebuf)));
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        err = mb_error_set(MB_EIO, "cannot read %s: it is a directory", path);
        goto done;
    }
    if (st_out)
        *st_out = st;
    for (;;) {
        if (n + 1 >= cap) {
            size_t next = cap ? cap * 2 : 4096;
            char *grown;
            if (cap > (size_t)KC_MAX_FILE) {
                err = mb_error_set(MB_EIO, "cannot read %s: larger than %ld bytes", path, KC_MAX_FILE);
                goto done;
            }
            if (!(grown = realloc(buf, next))) {
                err = kube_config_nomem();
                goto done;
            }
            buf = grown;
            cap = next;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = mb_error_set(MB_EIO, "cannot read %s: %s", path, kube_errno_text(errno, ebuf, sizeof(ebuf)));
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;

done:
    mb_secret_free_len(buf, cap);
    close(fd);
    return err;
}

/* ---- PEM checks (OpenSSL) --------------------------------------------- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/*
 * Whether OpenSSL's error queue says an allocation failed (then a PEM block
 * that did not parse may be fine); empties the queue either way. OpenSSL does
 * not report every one of its failed allocations: the rest still read as a
 * malformed block.
 */
static bool openssl_nomem(void)
{
    unsigned long e;
    bool nomem = false;
    while ((e = ERR_get_error()) != 0)
        nomem = nomem || ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE;
    return nomem;
}

/* 0 when pem holds what kind asks for; MB_EINVAL with a reason otherwise, MB_ENOMEM. */
int kube_pem_check(const kube_pem *pem, kube_pem_kind kind)
{
    int err = 0, certs = 0;
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;

    if (pem->len > INT_MAX)
        return mb_error_set(MB_EINVAL, "larger than %d bytes", INT_MAX);
    ERR_clear_error(); /* what the queue holds now is about something else */
    if (!(bio = BIO_new_mem_buf(pem->data, (int)pem->len))) {
        ERR_clear_error();
        return kube_config_nomem();
    }
    if (kind == KUBE_PEM_KEY) {
        if (!(key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)))
            err = openssl_nomem()
                      ? kube_config_nomem()
                      : mb_error_set(MB_EINVAL, "not a PEM private key (or an encrypted one, which is not supported)");
    } else {
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            certs++;
            X509_free(x);
            if (kind == KUBE_PEM_CERT)
                break;
        }
        /* the loop ends on an error in any case: at the end of the data it is "no start line" */
        if (openssl_nomem())
            err = kube_config_nomem();
        else if (certs == 0)
            err = mb_error_set(MB_EINVAL,
                               kind == KUBE_PEM_CERT ? "not a PEM certificate" : "contains no PEM certificate");
    }
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return err;
}

/* 0 when the first certificate of cert belongs to key. */
int kube_pem_check_pair(const kube_pem *cert, const kube_pem *key)
{
    int ok = 0;
    BIO *cb, *kb;
    X509 *x;
    EVP_PKEY *k;

    ERR_clear_error(); /* what the queue holds now is about something else */
    cb = BIO_new_mem_buf(cert->data, (int)cert->len);
    kb = BIO_new_mem_buf(key->data, (int)key->len);
    x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    k = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    if (x && k)
        ok = X509_check_private_key(x, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    if (ok) {
        ERR_clear_error();
        return 0;
    }
    if (openssl_nomem() || !cb || !kb) /* openssl_nomem() empties the queue: call it first */
        return kube_config_nomem();
    return mb_error_set(MB_EINVAL, "the client certificate and the client key do not belong together");
}

/* ---- tokens ----------------------------------------------------------- */

/* Trims surrounding whitespace in place; MB_EINVAL if empty or a control character remains. */
int kube_token_clean(char *t)
{
    size_t len = strlen(t), start = 0;
    while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t' || t[len - 1] == '\n' || t[len - 1] == '\r'))
        len--;
    while (start < len && (t[start] == ' ' || t[start] == '\t' || t[start] == '\n' || t[start] == '\r'))
        start++;
    memmove(t, t + start, len - start);
    OPENSSL_cleanse(t + (len - start), strlen(t + (len - start)));
    t[len - start] = '\0';
    if (!t[0])
        return mb_error_set(MB_EINVAL, "the token is empty");
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return mb_error_set(MB_EINVAL, "the token contains a line break or control character");
    return 0;
}

/* Reads cfg->token_file into cfg->cached_token and remembers what it looked like. */
int kube_token_file_load(kube_config *cfg)
{
    int err = 0;
    char *text = NULL;
    size_t len = 0;
    struct stat st;

    /* st describes exactly what was read: a rotation changes at least one of its fields */
    if ((err = kube_file_read(&text, &len, cfg->token_file, &st)) < 0)
        return err;
    if ((err = kube_token_clean(text)) < 0) {
        err = mb_error_wrap(err, "%s", cfg->token_file);
        goto done;
    }
    cfg->cached_token_mtime = st.st_mtim.tv_sec;
    cfg->cached_token_mtime_ns = st.st_mtim.tv_nsec;
    cfg->cached_token_size = (long long)st.st_size;
    cfg->cached_token_ino = (unsigned long long)st.st_ino;
    cfg->cached_token_dev = (unsigned long long)st.st_dev;
    mb_secret_free(cfg->cached_token);
    cfg->cached_token = text;
    text = NULL;

done:
    mb_secret_free(text);
    return err;
}

/* Re-reads the token file when a stat shows it changed; keeps the last good token on failure. */
static void kube_token_file_refresh(kube_config *cfg)
{
    struct stat st;
    if (stat(cfg->token_file, &st) == 0 && st.st_mtim.tv_sec == cfg->cached_token_mtime &&
        st.st_mtim.tv_nsec == cfg->cached_token_mtime_ns && (long long)st.st_size == cfg->cached_token_size &&
        (unsigned long long)st.st_ino == cfg->cached_token_ino &&
        (unsigned long long)st.st_dev == cfg->cached_token_dev)
        return;
    if (kube_token_file_load(cfg) < 0) {
        if (!cfg->token_file_warned)
            log_warn("token file %s could not be re-read, still using the last token read: %s", cfg->token_file,
                     mb_error_last());
        cfg->token_file_warned = true;
        cfg->cached_token_mtime = 0; /* try again on the next request */
        return;
    }
    cfg->token_file_warned = false;
    log_debug("token file %s changed; using the new token", cfg->token_file);
}

/* ---- credentials ------------------------------------------------------ */

int kube_config_credentials(kube_credentials *out, kube_config *cfg)
{
    int err = 0;
    const char *bearer = NULL;
    const kube_pem *cert = NULL, *key = NULL;

    memset(out, 0, sizeof(*out));
    if (!cfg)
        return mb_error_set(MB_EINVAL, "no Kubernetes configuration to take credentials from");
    pthread_mutex_lock(&cfg->lock);
    bearer = cfg->token;
    cert = &cfg->client_cert;
    key = &cfg->client_key;
    if (cfg->exec) {
        if ((err = kube_exec_refresh(cfg)) < 0)
            goto done;
        bearer = cfg->exec_token;
        if (cfg->exec_cert.len) {
            cert = &cfg->exec_cert;
            key = &cfg->exec_key;
        }
    } else if (cfg->token_file) {
        kube_token_file_refresh(cfg);
        bearer = cfg->cached_token;
    }
    if ((err = kube_config_strdup(&out->bearer, bearer)) < 0 || (err = kube_pem_dup(&out->cert, cert)) < 0 ||
        (err = kube_pem_dup(&out->key, key)) < 0)
        goto done;

done:
    pthread_mutex_unlock(&cfg->lock);
    if (err < 0)
        kube_credentials_clear(out);
    return err;
}

void kube_config_credentials_invalidate(kube_config *cfg)
{
    if (!cfg)
        return;
    pthread_mutex_lock(&cfg->lock);
    cfg->exec_valid = false;
    cfg->exec_expiry = 0;
    cfg->exec_next_try = 0;
    cfg->cached_token_mtime = 0;
    cfg->cached_token_mtime_ns = -1; /* forces a re-read of the token file */
    pthread_mutex_unlock(&cfg->lock);
}

void kube_credentials_clear(kube_credentials *c)
{
    if (!c)
        return;
    mb_secret_free(c->bearer);
    kube_pem_clear(&c->cert);
    kube_pem_clear(&c->key);
    c->bearer = NULL;
}
