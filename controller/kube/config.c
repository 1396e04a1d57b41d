/*
 * Kubernetes client configuration: finds and merges kubeconfig files the way
 * kubectl does (explicit path, $KUBECONFIG, ~/.kube/config, then in-cluster),
 * picks a context, and turns its cluster and user into a kube_config with PEM
 * bytes in memory. Credentials that change while the process runs live in a
 * small cache under cfg->lock: a tokenFile (and the in-cluster token) is
 * re-read when a stat shows it changed, and an exec credential plugin is run
 * with posix_spawn when its credential is missing or about to expire. Errors
 * name the file and the field ("kubeconfig F: users[\"u\"].user.token: ...");
 * tokens and keys are never logged and are wiped when freed.
 */
#include "kube/config.h"
#include "util/error.h"
#include "util/log.h"
#include "util/yaml.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define KC_MAX_FILE (16L << 20)       /* a kubeconfig, PEM or token file */
#define KC_MAX_PLUGIN_OUTPUT (1L << 20)
#define KC_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KC_EXEC_V1 "client.authentication.k8s.io/v1"
#define KC_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"
#define KC_EXEC_EXTENSION "client.authentication.k8s.io/exec"

/* ---- small helpers ---------------------------------------------------- */

static const char *errno_text(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len); /* the GNU variant: returns the text */
}

static int nomem(void)
{
    return mb_error_set(MB_ENOMEM, "out of memory while loading the Kubernetes configuration");
}

static int dup_str(char **out, const char *s)
{
    *out = NULL;
    if (!s)
        return 0;
    if (!(*out = strdup(s)))
        return nomem();
    return 0;
}

static void secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void pem_clear(kube_pem *p)
{
    if (p->data) {
        OPENSSL_cleanse(p->data, p->len);
        free(p->data);
    }
    p->data = NULL;
    p->len = 0;
}

static int pem_dup(kube_pem *out, const kube_pem *src)
{
    out->data = NULL;
    out->len = 0;
    if (!src->data || !src->len)
        return 0;
    if (!(out->data = malloc(src->len + 1)))
        return nomem();
    memcpy(out->data, src->data, src->len);
    out->data[src->len] = '\0';
    out->len = src->len;
    return 0;
}

/* dir/path, or path when it is absolute (or dir is NULL). */
static int path_resolve(char **out, const char *dir, const char *path)
{
    *out = NULL;
    if (path[0] == '/' || !dir || strcmp(dir, ".") == 0)
        return dup_str(out, path);
    if (asprintf(out, "%s/%s", dir, path) < 0) {
        *out = NULL;
        return nomem();
    }
    return 0;
}

static int dir_of(char **out, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dup_str(out, ".");
    if (slash == path)
        return dup_str(out, "/");
    if (!(*out = strndup(path, (size_t)(slash - path))))
        return nomem();
    return 0;
}

/*
 * Reads a whole file (at most KC_MAX_FILE) into a NUL-terminated buffer; when
 * st is non-NULL it receives the fstat of the descriptor that was read.
 */
static int read_file_stat(char **out, size_t *len, const char *path, struct stat *st_out)
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
                            errno_text(e, ebuf, sizeof(ebuf)));
    }
    if (fstat(fd, &st) < 0) {
        err = mb_error_set(MB_EIO, "cannot read %s: %s", path, errno_text(errno, ebuf, sizeof(ebuf)));
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
                err = nomem();
                goto done;
            }
            buf = grown;
            cap = next;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = mb_error_set(MB_EIO, "cannot read %s: %s", path, errno_text(errno, ebuf, sizeof(ebuf)));
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
    if (buf) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
    }
    close(fd);
    return err;
}

static int read_file(char **out, size_t *len, const char *path)
{
    return read_file_stat(out, len, path, NULL);
}

/* Decodes standard base64 (line breaks allowed) into a NUL-terminated buffer. */
static int base64_decode(kube_pem *out, const char *in)
{
    int err = 0, n = 0, total = 0;
    size_t in_len = strlen(in);
    EVP_ENCODE_CTX *ctx = NULL;
    unsigned char *buf = NULL;

    out->data = NULL;
    out->len = 0;
    if (in_len > INT_MAX / 2)
        return mb_error_set(MB_EINVAL, "too long");
    if (!(ctx = EVP_ENCODE_CTX_new()) || !(buf = malloc(in_len + 4))) {
        err = nomem();
        goto done;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n, (const unsigned char *)in, (int)in_len) < 0) {
        err = mb_error_set(MB_EINVAL, "not valid base64");
        goto done;
    }
    total = n;
    if (EVP_DecodeFinal(ctx, buf + total, &n) < 0) {
        err = mb_error_set(MB_EINVAL, "not valid base64");
        goto done;
    }
    total += n;
    if (total == 0) {
        err = mb_error_set(MB_EINVAL, "empty after base64 decoding");
        goto done;
    }
    buf[total] = '\0';
    out->data = (char *)buf;
    out->len = (size_t)total;
    buf = NULL;

done:
    free(buf);
    EVP_ENCODE_CTX_free(ctx);
    return err;
}

static int base64_encode(char **out, const kube_pem *in)
{
    size_t cap = 4 * ((in->len + 2) / 3) + 1;
    *out = NULL;
    if (in->len > INT_MAX / 2)
        return mb_error_set(MB_EINVAL, "certificate data too long");
    if (!(*out = malloc(cap)))
        return nomem();
    EVP_EncodeBlock((unsigned char *)*out, (const unsigned char *)in->data, (int)in->len);
    return 0;
}

/* ---- PEM checks (OpenSSL) --------------------------------------------- */

typedef enum { PEM_CERTS, PEM_CERT, PEM_KEY } pem_kind;

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
static int pem_check(const kube_pem *pem, pem_kind kind)
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
        return nomem();
    }
    if (kind == PEM_KEY) {
        if (!(key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)))
            err = openssl_nomem() ? nomem()
                                  : mb_error_set(MB_EINVAL, "not a PEM private key (or an encrypted one, which is not supported)");
    } else {
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            certs++;
            X509_free(x);
            if (kind == PEM_CERT)
                break;
        }
        /* the loop ends on an error in any case: at the end of the data it is "no start line" */
        if (openssl_nomem())
            err = nomem();
        else if (certs == 0)
            err = mb_error_set(MB_EINVAL, kind == PEM_CERT ? "not a PEM certificate" : "contains no PEM certificate");
    }
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return err;
}

/* 0 when the first certificate of cert belongs to key. */
static int pem_check_pair(const kube_pem *cert, const kube_pem *key)
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
        return nomem();
    return mb_error_set(MB_EINVAL, "the client certificate and the client key do not belong together");
}

/* ---- tokens ----------------------------------------------------------- */

/* Trims surrounding whitespace in place; MB_EINVAL if empty or a control character remains. */
static int token_clean(char *t)
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
static int token_file_load(kube_config *cfg)
{
    int err = 0;
    char *text = NULL;
    size_t len = 0;
    struct stat st;

    /* st describes exactly what was read: a rotation changes at least one of its fields */
    if ((err = read_file_stat(&text, &len, cfg->token_file, &st)) < 0)
        return err;
    if ((err = token_clean(text)) < 0) {
        err = mb_error_wrap(err, "%s", cfg->token_file);
        goto done;
    }
    cfg->cached_token_mtime = st.st_mtim.tv_sec;
    cfg->cached_token_mtime_ns = st.st_mtim.tv_nsec;
    cfg->cached_token_size = (long long)st.st_size;
    cfg->cached_token_ino = (unsigned long long)st.st_ino;
    cfg->cached_token_dev = (unsigned long long)st.st_dev;
    secret_free(cfg->cached_token);
    cfg->cached_token = text;
    text = NULL;

done:
    secret_free(text);
    return err;
}

/* Re-reads the token file when a stat shows it changed; keeps the last good token on failure. */
static void token_file_refresh(kube_config *cfg)
{
    struct stat st;
    if (stat(cfg->token_file, &st) == 0 && st.st_mtim.tv_sec == cfg->cached_token_mtime &&
        st.st_mtim.tv_nsec == cfg->cached_token_mtime_ns && (long long)st.st_size == cfg->cached_token_size &&
        (unsigned long long)st.st_ino == cfg->cached_token_ino &&
        (unsigned long long)st.st_dev == cfg->cached_token_dev)
        return;
    if (token_file_load(cfg) < 0) {
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

/* ---- kubeconfig files ------------------------------------------------- */

typedef struct {
    char *path;
    char *dir;  /* relative paths inside the file resolve against this */
    cJSON *doc; /* null for an empty file */
} kc_file;

typedef struct {
    kc_file *files;
    size_t n;
    char *source; /* the paths joined with ':' */
} kc_set;

/* One named entry of clusters, users or contexts and the file that defined it. */
typedef struct {
    const cJSON *body; /* the cluster/user/context mapping; NULL when empty */
    const kc_file *file;
} kc_entry;

/* Where a field lives, for messages: the file and e.g. users["admin"].user */
typedef struct {
    const kc_file *file;
    char where[384];
} kc_scope;

static const char *const kc_lists[] = {"clusters", "users", "contexts"};
static const char *const kc_bodies[] = {"cluster", "user", "context"};

static void kc_set_free(kc_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->files[i].path);
        free(set->files[i].dir);
        cJSON_Delete(set->files[i].doc);
    }
    free(set->files);
    free(set->source);
    memset(set, 0, sizeof(*set));
}

__attribute__((format(printf, 4, 5)))
static int field_error(int code, const kc_scope *s, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (field)
        return mb_error_set(code, "kubeconfig %s: %s.%s: %s", s->file->path, s->where, field, msg);
    return mb_error_set(code, "kubeconfig %s: %s: %s", s->file->path, s->where, msg);
}

/* Prefixes the current message with the file and field. */
static int field_wrap(int code, const kc_scope *s, const char *field)
{
    return mb_error_wrap(code, "kubeconfig %s: %s.%s", s->file->path, s->where, field);
}

static void scope_init(kc_scope *s, const kc_file *file, const char *list, const char *name, const char *body)
{
    s->file = file;
    snprintf(s->where, sizeof(s->where), "%s[\"%s\"].%s", list, name, body);
}

/* The string at key, NULL when missing, null or empty; an error when of another type. */
static int field_str(const char **out, const kc_scope *s, const cJSON *body, const char *key)
{
    const cJSON *v = body ? cJSON_GetObjectItemCaseSensitive(body, key) : NULL;
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return field_error(MB_EINVAL, s, key, "not a string (quote the value)");
    if (v->valuestring[0])
        *out = v->valuestring;
    return 0;
}

static int field_bool(bool *out, const kc_scope *s, const cJSON *body, const char *key)
{
    const cJSON *v = body ? cJSON_GetObjectItemCaseSensitive(body, key) : NULL;
    *out = false;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return field_error(MB_EINVAL, s, key, "not true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

/*
 * Reads PEM from data_key (base64) or file_key (a path, relative to the
 * kubeconfig's directory) and checks it is what kind says. -data wins when
 * both are set, as in kubectl.
 */
static int field_pem(kube_pem *out, const kc_scope *s, const cJSON *body, const char *file_key,
                     const char *data_key, pem_kind kind)
{
    int err = 0;
    const char *data = NULL, *file = NULL, *field = NULL;
    char *path = NULL;

    if ((err = field_str(&data, s, body, data_key)) < 0 || (err = field_str(&file, s, body, file_key)) < 0)
        return err;
    if (data) {
        field = data_key;
        if (file)
            log_warn("kubeconfig %s: %s sets both %s and %s; using %s", s->file->path, s->where, file_key,
                     data_key, data_key);
        if ((err = base64_decode(out, data)) < 0) {
            err = field_wrap(err, s, data_key);
            goto done;
        }
    } else if (file) {
        field = file_key;
        if ((err = path_resolve(&path, s->file->dir, file)) < 0)
            goto done;
        if ((err = read_file(&out->data, &out->len, path)) < 0) {
            err = field_wrap(err, s, file_key);
            goto done;
        }
    } else {
        return 0;
    }
    if ((err = pem_check(out, kind)) < 0) {
        if (path)
            err = mb_error_wrap(err, "%s", path);
        err = field_wrap(err, s, field);
    }

done:
    if (err < 0)
        pem_clear(out);
    free(path);
    return err;
}

static int kc_file_check(const kc_file *f)
{
    const cJSON *doc = f->doc;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(doc, "current-context");

    if (cJSON_IsNull(doc))
        return 0;
    if (!cJSON_IsObject(doc))
        return mb_error_set(MB_EINVAL, "kubeconfig %s: the file is not a mapping of clusters, users and contexts",
                            f->path);
    if (cur && !cJSON_IsNull(cur) && !cJSON_IsString(cur))
        return mb_error_set(MB_EINVAL, "kubeconfig %s: current-context: not a string", f->path);
    for (size_t l = 0; l < 3; l++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, kc_lists[l]);
        int i = 0;
        if (!list || cJSON_IsNull(list))
            continue;
        if (!cJSON_IsArray(list))
            return mb_error_set(MB_EINVAL, "kubeconfig %s: %s: not a list (write \"- name: ...\" entries)",
                                f->path, kc_lists[l]);
        for (const cJSON *el = list->child; el; el = el->next, i++) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(el, "name");
            const cJSON *body = cJSON_GetObjectItemCaseSensitive(el, kc_bodies[l]);
            if (!cJSON_IsObject(el))
                return mb_error_set(MB_EINVAL, "kubeconfig %s: %s[%d]: not a mapping", f->path, kc_lists[l], i);
            if (!cJSON_IsString(name) || !name->valuestring[0])
                return mb_error_set(MB_EINVAL, "kubeconfig %s: %s[%d].name: missing or not a string", f->path,
                                    kc_lists[l], i);
            if (body && !cJSON_IsNull(body) && !cJSON_IsObject(body))
                return mb_error_set(MB_EINVAL, "kubeconfig %s: %s[\"%s\"].%s: not a mapping", f->path,
                                    kc_lists[l], name->valuestring, kc_bodies[l]);
        }
    }
    return 0;
}

/* The element that first defines name in list across the files (kubectl's merge: the first wins). */
static const cJSON *kc_first(const kc_set *set, size_t list, const char *name, const kc_file **file)
{
    for (size_t i = 0; i < set->n; i++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(set->files[i].doc, kc_lists[list]);
        for (const cJSON *el = cJSON_IsArray(arr) ? arr->child : NULL; el; el = el->next) {
            if (strcmp(cJSON_GetObjectItemCaseSensitive(el, "name")->valuestring, name) == 0) {
                if (file)
                    *file = &set->files[i];
                return el;
            }
        }
    }
    return NULL;
}

static int kc_find(kc_entry *out, const kc_set *set, size_t list, const char *name)
{
    const cJSON *el = kc_first(set, list, name, &out->file);
    const cJSON *body = el ? cJSON_GetObjectItemCaseSensitive(el, kc_bodies[list]) : NULL;
    if (!el)
        return MB_ENOTFOUND;
    out->body = cJSON_IsObject(body) ? body : NULL;
    return 0;
}

/* "a, b, c" (each name once, in order), or "none", truncated to fit. */
static void kc_names(char *buf, size_t len, const kc_set *set, size_t list)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < set->n; i++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(set->files[i].doc, kc_lists[list]);
        for (const cJSON *el = cJSON_IsArray(arr) ? arr->child : NULL; el; el = el->next) {
            const char *name = cJSON_GetObjectItemCaseSensitive(el, "name")->valuestring;
            if (kc_first(set, list, name, NULL) != el)
                continue; /* defined earlier */
            int w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);
            if (w < 0 || (size_t)w >= len - n) {
                snprintf(buf + (n < len - 6 ? n : len - 6), 6, ", ...");
                return;
            }
            n += (size_t)w;
        }
    }
    if (n == 0)
        snprintf(buf, len, "none");
}

/* current-context from the first file that sets it. */
static const char *kc_current_context(const kc_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(set->files[i].doc, "current-context");
        if (cJSON_IsString(c) && c->valuestring[0])
            return c->valuestring;
    }
    return NULL;
}

/* ---- cluster, user, exec ---------------------------------------------- */

static int server_normalize(char **out, const kc_scope *s, const char *server)
{
    size_t len = strlen(server);
    *out = NULL;
    while (len > 0 && server[len - 1] == '/')
        len--;
    if (strstr(server, "://") == NULL) {
        if (asprintf(out, "https://%.*s", (int)len, server) < 0) {
            *out = NULL;
            return nomem();
        }
        return 0;
    }
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
        return field_error(MB_EINVAL, s, "server", "\"%s\" is not an http or https URL", server);
    if (!(*out = strndup(server, len)))
        return nomem();
    return 0;
}

static int kc_cluster(kube_config *cfg, const kc_scope *s, const cJSON *body)
{
    int err = 0;
    const char *server = NULL, *sni = NULL, *proxy = NULL;

    if ((err = field_str(&server, s, body, "server")) < 0)
        return err;
    if (!server)
        return field_error(MB_EINVAL, s, "server", "missing; set it to the API server's URL, e.g. https://host:6443");
    if ((err = server_normalize(&cfg->server, s, server)) < 0)
        return err;
    if ((err = field_str(&sni, s, body, "tls-server-name")) < 0 || (err = dup_str(&cfg->tls_server_name, sni)) < 0)
        return err;
    if ((err = field_bool(&cfg->insecure_skip_tls_verify, s, body, "insecure-skip-tls-verify")) < 0)
        return err;
    if ((err = field_pem(&cfg->ca, s, body, "certificate-authority", "certificate-authority-data", PEM_CERTS)) < 0)
        return err;
    if (cfg->insecure_skip_tls_verify && cfg->ca.len)
        return field_error(MB_EINVAL, s, "insecure-skip-tls-verify",
                           "cannot be combined with certificate-authority(-data); remove one of them");
    if (cfg->insecure_skip_tls_verify)
        log_warn("kubeconfig %s: %s.insecure-skip-tls-verify is true: the API server's certificate will not be "
                 "verified",
                 s->file->path, s->where);
    if ((err = field_str(&proxy, s, body, "proxy-url")) < 0)
        return err;
    if (proxy)
        log_warn("kubeconfig %s: %s.proxy-url is not supported and is ignored", s->file->path, s->where);
    return 0;
}

static int str_list(char ***out, const kc_scope *s, const cJSON *body, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    int n = 0, i = 0;

    *out = NULL;
    if (v && !cJSON_IsNull(v) && !cJSON_IsArray(v))
        return field_error(MB_EINVAL, s, key, "not a list");
    n = v && cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (!(*out = calloc((size_t)n + 1, sizeof(char *))))
        return nomem();
    for (const cJSON *el = n ? v->child : NULL; el; el = el->next, i++) {
        if (!cJSON_IsString(el))
            return field_error(MB_EINVAL, s, key, "item %d is not a string (quote it)", i);
        if (!((*out)[i] = strdup(el->valuestring)))
            return nomem();
    }
    return 0;
}

static int env_list(char ***out, const kc_scope *s, const cJSON *body)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "env");
    int n = 0, i = 0;
    char field[32];

    *out = NULL;
    if (v && !cJSON_IsNull(v) && !cJSON_IsArray(v))
        return field_error(MB_EINVAL, s, "env", "not a list of name/value pairs");
    n = v && cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (!(*out = calloc((size_t)n + 1, sizeof(char *))))
        return nomem();
    for (const cJSON *el = n ? v->child : NULL; el; el = el->next, i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(el, "name");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(el, "value");
        snprintf(field, sizeof(field), "env[%d]", i);
        if (!cJSON_IsString(name) || !name->valuestring[0] || strchr(name->valuestring, '='))
            return field_error(MB_EINVAL, s, field, "name: missing, not a string, or contains '='");
        if (!cJSON_IsString(value))
            return field_error(MB_EINVAL, s, field, "value: missing or not a string (quote it)");
        if (asprintf(&(*out)[i], "%s=%s", name->valuestring, value->valuestring) < 0) {
            (*out)[i] = NULL;
            return nomem();
        }
    }
    return 0;
}

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

static void exec_config_free(kube_exec_config *x)
{
    if (!x)
        return;
    free(x->command);
    strv_free(x->args);
    strv_free(x->env);
    free(x->api_version);
    free(x->install_hint);
    free(x->exec_info);
    free(x->origin);
    free(x);
}

static int kc_exec(kube_exec_config **out, const kc_scope *user_scope, const cJSON *body)
{
    int err = 0;
    kc_scope s = *user_scope;
    kube_exec_config *x = NULL;
    const char *command = NULL, *api = NULL, *mode = NULL, *hint = NULL;

    *out = NULL;
    if (strlen(user_scope->where) + 6 > sizeof(s.where))
        return mb_error_set(MB_EINVAL, "kubeconfig %s: a user name is too long", s.file->path);
    memcpy(s.where + strlen(s.where), ".exec", 6);
    if (!cJSON_IsObject(body))
        return field_error(MB_EINVAL, &s, NULL, "not a mapping");
    if (!(x = calloc(1, sizeof(*x))))
        return nomem();
    x->timeout_ms = KUBE_EXEC_TIMEOUT_MS;
    if ((err = field_str(&command, &s, body, "command")) < 0)
        goto done;
    if (!command) {
        err = field_error(MB_EINVAL, &s, "command", "missing; name the credential plugin to run");
        goto done;
    }
    /* a relative path with a directory part is relative to the kubeconfig; a bare name is looked up in PATH */
    if ((err = path_resolve(&x->command, strchr(command, '/') ? s.file->dir : NULL, command)) < 0)
        goto done;
    if ((err = field_str(&api, &s, body, "apiVersion")) < 0)
        goto done;
    if (!api || (strcmp(api, KC_EXEC_V1) != 0 && strcmp(api, KC_EXEC_V1BETA1) != 0)) {
        err = field_error(MB_EINVAL, &s, "apiVersion", "\"%s\" is not supported; use %s (or %s)", api ? api : "",
                          KC_EXEC_V1, KC_EXEC_V1BETA1);
        goto done;
    }
    if ((err = field_str(&mode, &s, body, "interactiveMode")) < 0)
        goto done;
    if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0) {
        err = field_error(MB_EINVAL, &s, "interactiveMode",
                          strcmp(mode, "Always") == 0 ? "\"Always\" needs a terminal, which an operator never has; "
                                                        "use a plugin that works with Never"
                                                      : "\"%s\" is not one of Never, IfAvailable, Always",
                          mode);
        goto done;
    }
    if ((err = field_str(&hint, &s, body, "installHint")) < 0 || (err = dup_str(&x->install_hint, hint)) < 0 ||
        (err = dup_str(&x->api_version, api)) < 0 ||
        (err = field_bool(&x->provide_cluster_info, &s, body, "provideClusterInfo")) < 0 ||
        (err = str_list(&x->args, &s, body, "args")) < 0 || (err = env_list(&x->env, &s, body)) < 0)
        goto done;
    if (asprintf(&x->origin, "kubeconfig %s: %s", s.file->path, s.where) < 0) {
        x->origin = NULL;
        err = nomem();
        goto done;
    }
    *out = x;
    x = NULL;

done:
    exec_config_free(x);
    return err;
}

static int kc_user(kube_config *cfg, const kc_scope *s, const cJSON *body)
{
    int err = 0;
    const char *token = NULL, *token_file = NULL;
    const cJSON *exec = cJSON_GetObjectItemCaseSensitive(body, "exec");

    if (cJSON_GetObjectItemCaseSensitive(body, "auth-provider"))
        return field_error(MB_EINVAL, s, "auth-provider",
                           "auth-provider plugins are not supported; use an exec credential plugin");
    for (const char *const *k = (const char *const[]){"username", "password", NULL}; *k; k++)
        if (cJSON_GetObjectItemCaseSensitive(body, *k))
            return field_error(MB_EINVAL, s, *k, "basic authentication is not supported; use a token, a client "
                                                 "certificate or an exec plugin");
    for (const char *const *k = (const char *const[]){"as", "as-uid", "as-groups", "as-user-extra", NULL}; *k; k++)
        if (cJSON_GetObjectItemCaseSensitive(body, *k))
            return field_error(MB_EINVAL, s, *k, "impersonation is not supported");

    if ((err = field_str(&token, s, body, "token")) < 0 || (err = field_str(&token_file, s, body, "tokenFile")) < 0)
        return err;
    if (exec && !cJSON_IsNull(exec) && (token || token_file))
        return field_error(MB_EINVAL, s, "exec", "cannot be combined with token or tokenFile; keep one of them");
    if (token) {
        if ((err = dup_str(&cfg->token, token)) < 0)
            return err;
        if ((err = token_clean(cfg->token)) < 0)
            return field_wrap(err, s, "token");
    }
    if (token_file) {
        if ((err = path_resolve(&cfg->token_file, s->file->dir, token_file)) < 0)
            return err;
        if ((err = token_file_load(cfg)) < 0)
            return field_wrap(err, s, "tokenFile");
    }
    if ((err = field_pem(&cfg->client_cert, s, body, "client-certificate", "client-certificate-data", PEM_CERT)) < 0 ||
        (err = field_pem(&cfg->client_key, s, body, "client-key", "client-key-data", PEM_KEY)) < 0)
        return err;
    if (cfg->client_cert.len && !cfg->client_key.len)
        return field_error(MB_EINVAL, s, NULL, "client-certificate is set but client-key is not; set both or neither");
    if (cfg->client_key.len && !cfg->client_cert.len)
        return field_error(MB_EINVAL, s, NULL, "client-key is set but client-certificate is not; set both or neither");
    if (cfg->client_cert.len && (err = pem_check_pair(&cfg->client_cert, &cfg->client_key)) < 0)
        return err == MB_ENOMEM ? err
                                : field_error(MB_EINVAL, s, NULL, "client-certificate and client-key do not belong together");
    if (exec && !cJSON_IsNull(exec) && (err = kc_exec(&cfg->exec, s, exec)) < 0)
        return err;
    return 0;
}

/* The ExecCredential a plugin receives in KUBERNETES_EXEC_INFO. */
static int exec_info_build(kube_config *cfg, const cJSON *cluster_body)
{
    int err = 0;
    kube_exec_config *x = cfg->exec;
    cJSON *root = cJSON_CreateObject(), *spec = NULL, *cluster = NULL;
    char *ca64 = NULL, *printed = NULL;

    if (!root || !cJSON_AddStringToObject(root, "apiVersion", x->api_version) ||
        !cJSON_AddStringToObject(root, "kind", "ExecCredential") || !(spec = cJSON_AddObjectToObject(root, "spec")) ||
        !cJSON_AddFalseToObject(spec, "interactive")) {
        err = nomem();
        goto done;
    }
    if (x->provide_cluster_info) {
        const cJSON *exts = cJSON_GetObjectItemCaseSensitive(cluster_body, "extensions");
        if (!(cluster = cJSON_AddObjectToObject(spec, "cluster")) ||
            !cJSON_AddStringToObject(cluster, "server", cfg->server) ||
            (cfg->tls_server_name && !cJSON_AddStringToObject(cluster, "tls-server-name", cfg->tls_server_name)) ||
            (cfg->insecure_skip_tls_verify && !cJSON_AddTrueToObject(cluster, "insecure-skip-tls-verify"))) {
            err = nomem();
            goto done;
        }
        if (cfg->ca.len) {
            if ((err = base64_encode(&ca64, &cfg->ca)) < 0)
                goto done;
            if (!cJSON_AddStringToObject(cluster, "certificate-authority-data", ca64)) {
                err = nomem();
                goto done;
            }
        }
        for (const cJSON *e = cJSON_IsArray(exts) ? exts->child : NULL; e; e = e->next) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
            const cJSON *ext = cJSON_GetObjectItemCaseSensitive(e, "extension");
            if (name && ext && strcmp(name, KC_EXEC_EXTENSION) == 0) {
                cJSON *copy = cJSON_Duplicate(ext, 1);
                if (!copy || !cJSON_AddItemToObject(cluster, "config", copy)) {
                    cJSON_Delete(copy);
                    err = nomem();
                    goto done;
                }
                break;
            }
        }
    }
    if (!(printed = cJSON_PrintUnformatted(root)) || (err = dup_str(&x->exec_info, printed)) < 0)
        err = err < 0 ? err : nomem();

done:
    cJSON_free(printed);
    free(ca64);
    cJSON_Delete(root);
    return err;
}

/* ---- loading ---------------------------------------------------------- */

static int config_new(kube_config **out)
{
    kube_config *cfg = calloc(1, sizeof(*cfg));
    *out = NULL;
    if (!cfg)
        return nomem();
    if (pthread_mutex_init(&cfg->lock, NULL) != 0) {
        free(cfg);
        return mb_error_set(MB_ERROR, "cannot create a mutex for the Kubernetes credentials");
    }
    *out = cfg;
    return 0;
}

static int kc_load_set(kube_config **out, const kc_set *set, const char *want)
{
    int err = 0;
    kube_config *cfg = NULL;
    kc_entry ctx, cluster, user;
    kc_scope s, cs, us;
    const char *name = want && *want ? want : kc_current_context(set);
    const char *cluster_name = NULL, *user_name = NULL, *ns = NULL;
    char names[512];

    *out = NULL;
    if (!name) {
        kc_names(names, sizeof(names), set, 2);
        return mb_error_set(MB_EINVAL,
                            "kubeconfig %s: current-context is not set and no context was asked for (contexts: %s); "
                            "set current-context or pass --context",
                            set->source, names);
    }
    if (kc_find(&ctx, set, 2, name) < 0) {
        kc_names(names, sizeof(names), set, 2);
        return mb_error_set(MB_EINVAL, "kubeconfig %s: context \"%s\" not found (contexts: %s)", set->source, name,
                            names);
    }
    scope_init(&s, ctx.file, "contexts", name, "context");
    if ((err = field_str(&cluster_name, &s, ctx.body, "cluster")) < 0 ||
        (err = field_str(&user_name, &s, ctx.body, "user")) < 0 ||
        (err = field_str(&ns, &s, ctx.body, "namespace")) < 0)
        return err;
    if (!cluster_name) {
        kc_names(names, sizeof(names), set, 0);
        return field_error(MB_EINVAL, &s, "cluster", "missing; name one of the clusters (%s)", names);
    }
    if (kc_find(&cluster, set, 0, cluster_name) < 0) {
        kc_names(names, sizeof(names), set, 0);
        return field_error(MB_EINVAL, &s, "cluster", "cluster \"%s\" not found (clusters: %s)", cluster_name, names);
    }
    if (user_name && kc_find(&user, set, 1, user_name) < 0) {
        kc_names(names, sizeof(names), set, 1);
        return field_error(MB_EINVAL, &s, "user", "user \"%s\" not found (users: %s)", user_name, names);
    }

    if ((err = config_new(&cfg)) < 0)
        goto done;
    scope_init(&cs, cluster.file, "clusters", cluster_name, "cluster");
    if ((err = kc_cluster(cfg, &cs, cluster.body)) < 0)
        goto done;
    if (user_name) {
        scope_init(&us, user.file, "users", user_name, "user");
        if ((err = kc_user(cfg, &us, user.body)) < 0)
            goto done;
    }
    if (cfg->exec && (err = exec_info_build(cfg, cluster.body)) < 0)
        goto done;
    if ((err = dup_str(&cfg->source, set->source)) < 0 || (err = dup_str(&cfg->context, name)) < 0 ||
        (err = dup_str(&cfg->namespace, ns)) < 0)
        goto done;
    log_debug("kubeconfig %s: using context \"%s\" (cluster \"%s\", server %s)", set->source, name, cluster_name,
              cfg->server);
    *out = cfg;
    cfg = NULL;

done:
    kube_config_free(cfg);
    return err;
}

/* Reads and checks one file into the set; a missing file is skipped when optional. */
static int kc_set_add(kc_set *set, const char *path, bool optional)
{
    int err = 0;
    char *text = NULL, *source = NULL;
    size_t len = 0;
    kc_file f = {NULL, NULL, NULL};

    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->files[i].path, path) == 0)
            return 0;
    if ((err = read_file(&text, &len, path)) < 0) {
        if (err == MB_ENOTFOUND && optional) {
            log_debug("kubeconfig %s does not exist; skipped", path);
            mb_error_clear();
            return 0;
        }
        return mb_error_wrap(err, "kubeconfig %s", path);
    }
    if (asprintf(&source, "kubeconfig %s", path) < 0) {
        source = NULL;
        err = nomem();
        goto done;
    }
    if ((err = mb_yaml_parse(&f.doc, text, len, source)) < 0 || (err = dup_str(&f.path, path)) < 0 ||
        (err = dir_of(&f.dir, path)) < 0)
        goto done;
    if ((err = kc_file_check(&f)) < 0)
        goto done;
    kc_file *grown = realloc(set->files, (set->n + 1) * sizeof(*grown));
    if (!grown) {
        err = nomem();
        goto done;
    }
    set->files = grown;
    set->files[set->n++] = f;
    memset(&f, 0, sizeof(f));

done:
    free(f.path);
    free(f.dir);
    cJSON_Delete(f.doc);
    free(source);
    if (text) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    return err;
}

static int kc_set_source(kc_set *set)
{
    size_t len = 1;
    for (size_t i = 0; i < set->n; i++)
        len += strlen(set->files[i].path) + 1;
    if (!(set->source = calloc(1, len)))
        return nomem();
    for (size_t i = 0; i < set->n; i++) {
        if (i)
            strcat(set->source, ":");
        strcat(set->source, set->files[i].path);
    }
    return 0;
}

static int load_files(kube_config **out, const char *const *paths, size_t n, bool optional, const char *context,
                      const char *origin)
{
    int err = 0;
    kc_set set = {NULL, 0, NULL};

    for (size_t i = 0; i < n; i++)
        if ((err = kc_set_add(&set, paths[i], optional)) < 0)
            goto done;
    if (set.n == 0) {
        err = mb_error_set(MB_ENOTFOUND, "%s names no existing kubeconfig file; fix it or unset it", origin);
        goto done;
    }
    if ((err = kc_set_source(&set)) < 0)
        goto done;
    err = kc_load_set(out, &set, context);

done:
    kc_set_free(&set);
    return err;
}

static int load_kubeconfig_env(kube_config **out, const char *value, const char *context)
{
    int err = 0;
    char *copy = strdup(value), *save = NULL;
    const char **paths = NULL;
    size_t n = 0;
    char origin[600];

    if (!copy || !(paths = calloc(strlen(value) / 2 + 2, sizeof(*paths)))) {
        err = nomem();
        goto done;
    }
    for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
        paths[n++] = p;
    snprintf(origin, sizeof(origin), "$KUBECONFIG (%s)", value);
    err = load_files(out, paths, n, true, context, origin);

done:
    free(paths);
    free(copy);
    return err;
}

int kube_config_load_opts(kube_config **out, const kube_config_opts *opts)
{
    const kube_config_opts none = {NULL, NULL, NULL};
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
    char *home_config = NULL;
    struct stat st;
    int err = 0;

    *out = NULL;
    if (!opts)
        opts = &none;
    if (opts->path && *opts->path)
        return load_files(out, &opts->path, 1, false, opts->context, "--kubeconfig");
    if (env && *env)
        return load_kubeconfig_env(out, env, opts->context);
    if (home && *home) {
        if (asprintf(&home_config, "%s/.kube/config", home) < 0)
            return nomem();
        if (stat(home_config, &st) == 0 || errno != ENOENT) {
            const char *p = home_config;
            err = load_files(out, &p, 1, false, opts->context, "$HOME");
            free(home_config);
            return err;
        }
    }
    if (!getenv("KUBERNETES_SERVICE_HOST")) {
        err = mb_error_set(MB_ENOTFOUND,
                           "no Kubernetes configuration found: no --kubeconfig, $KUBECONFIG is unset, %s does not "
                           "exist, and KUBERNETES_SERVICE_HOST is unset (not running in a pod)",
                           home_config ? home_config : "~/.kube/config ($HOME is unset)");
        free(home_config);
        return err;
    }
    free(home_config);
    if (opts->context && *opts->context)
        return mb_error_set(MB_EINVAL,
                            "context \"%s\" was asked for, but there is no kubeconfig (no --kubeconfig, $KUBECONFIG "
                            "or ~/.kube/config) and the in-cluster configuration has no contexts",
                            opts->context);
    return kube_config_load_incluster(out, opts->incluster_root);
}

int kube_config_load(kube_config **out, const char *path, const char *context)
{
    const kube_config_opts opts = {path, context, NULL};
    return kube_config_load_opts(out, &opts);
}

/* ---- in-cluster ------------------------------------------------------- */

int kube_config_load_incluster(kube_config **out, const char *root)
{
    int err = 0;
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    kube_config *cfg = NULL;
    char *path = NULL, *ns = NULL;
    size_t len = 0;
    bool bracket;

    *out = NULL;
    if (!root)
        root = "";
    if (!host || !*host || !port || !*port)
        return mb_error_set(MB_ENOTFOUND, "in-cluster configuration: KUBERNETES_SERVICE_HOST and "
                                          "KUBERNETES_SERVICE_PORT must both be set (Kubernetes sets them in a pod)");
    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
        return mb_error_set(MB_EINVAL, "in-cluster configuration: KUBERNETES_SERVICE_PORT \"%s\" is not a port number",
                            port);
    if ((err = config_new(&cfg)) < 0)
        return err;
    bracket = strchr(host, ':') && host[0] != '[';
    if (asprintf(&cfg->server, bracket ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0) {
        cfg->server = NULL;
        err = nomem();
        goto done;
    }
    if ((err = dup_str(&cfg->source, "in-cluster")) < 0)
        goto done;

    if (asprintf(&cfg->token_file, "%s" KC_SA_DIR "/token", root) < 0) {
        cfg->token_file = NULL;
        err = nomem();
        goto done;
    }
    if ((err = token_file_load(cfg)) < 0) {
        err = mb_error_wrap(err, "in-cluster configuration: the service-account token");
        goto done;
    }

    if (asprintf(&path, "%s" KC_SA_DIR "/ca.crt", root) < 0) {
        path = NULL;
        err = nomem();
        goto done;
    }
    err = read_file(&cfg->ca.data, &cfg->ca.len, path);
    if (err == MB_ENOTFOUND) {
        log_warn("in-cluster configuration: %s does not exist; verifying the API server with the system's CAs", path);
        err = 0;
    } else if (err < 0 || (err = pem_check(&cfg->ca, PEM_CERTS)) < 0) {
        err = mb_error_wrap(err, "in-cluster configuration: %s", path);
        goto done;
    }
    free(path);

    if (asprintf(&path, "%s" KC_SA_DIR "/namespace", root) < 0) {
        path = NULL;
        err = nomem();
        goto done;
    }
    /* the namespace file is optional: without it there is no default namespace */
    if ((err = read_file(&ns, &len, path)) == MB_ENOMEM)
        goto done;
    if (err == 0) {
        size_t n = strcspn(ns, " \t\r\n");
        ns[n] = '\0';
        if (n && (err = dup_str(&cfg->namespace, ns)) < 0)
            goto done;
    }
    err = 0;
    mb_error_clear();
    log_debug("in-cluster configuration: server %s, namespace %s", cfg->server,
              cfg->namespace ? cfg->namespace : "(none)");
    *out = cfg;
    cfg = NULL;

done:
    free(ns);
    free(path);
    kube_config_free(cfg);
    return err;
}

/* ---- exec credential plugins ------------------------------------------ */

typedef struct {
    char *token;
    kube_pem cert;
    kube_pem key;
    time_t expiry;
} exec_result;

static void exec_result_clear(exec_result *r)
{
    secret_free(r->token);
    pem_clear(&r->cert);
    pem_clear(&r->key);
    memset(r, 0, sizeof(*r));
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* environ without the names the kubeconfig sets, then those, then KUBERNETES_EXEC_INFO. */
static int exec_envp(char ***out, char **info_var, const kube_exec_config *x)
{
    size_t n = 0, k = 0, extra = 0;
    char **envp;

    *out = NULL;
    if (asprintf(info_var, "KUBERNETES_EXEC_INFO=%s", x->exec_info ? x->exec_info : "") < 0) {
        *info_var = NULL;
        return nomem();
    }
    for (char **e = environ; e && *e; e++)
        n++;
    for (char **e = x->env; e && *e; e++)
        extra++;
    if (!(envp = calloc(n + extra + 2, sizeof(char *))))
        return nomem();
    for (char **e = environ; e && *e; e++) {
        size_t name_len = strcspn(*e, "=");
        bool overridden = name_len == strlen("KUBERNETES_EXEC_INFO") &&
                          strncmp(*e, "KUBERNETES_EXEC_INFO", name_len) == 0;
        for (char **o = x->env; !overridden && o && *o; o++)
            overridden = strncmp(*e, *o, name_len + 1) == 0;
        if (!overridden)
            envp[k++] = *e;
    }
    for (char **o = x->env; o && *o; o++)
        envp[k++] = *o;
    envp[k++] = *info_var;
    *out = envp;
    return 0;
}

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
    bool overflow;
} exec_buf;

static int exec_buf_add(exec_buf *b, const char *data, size_t n)
{
    if (b->len + n > b->limit) {
        b->overflow = true;
        n = b->limit - b->len;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return nomem();
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* The first line of the plugin's stderr, for messages. */
static void first_line(char *buf, size_t len, const exec_buf *b)
{
    const char *s = b->data ? b->data : "";
    s += strspn(s, " \t\r\n");
    size_t n = strcspn(s, "\r\n");
    if (n == 0)
        snprintf(buf, len, "(nothing on stderr)");
    else
        snprintf(buf, len, "%.*s", (int)(n > 300 ? 300 : n), s);
}

/*
 * The executable to run: command itself when it has a '/', else the first
 * executable file of that name in $PATH. Checked here rather than left to
 * posix_spawnp so that "not found" reads the same whatever the spawn
 * implementation (some report it only as the child's exit code 127).
 */
static int exec_resolve(char **out, const kube_exec_config *x)
{
    const char *path_env = getenv("PATH");
    char *copy = NULL, *save = NULL, ebuf[128];
    struct stat st;
    int err = 0;

    *out = NULL;
    if (strchr(x->command, '/')) {
        const char *why = NULL;
        if (stat(x->command, &st) < 0 || access(x->command, X_OK) < 0)
            why = errno_text(errno, ebuf, sizeof(ebuf));
        else if (!S_ISREG(st.st_mode))
            why = "it is not a regular file";
        if (why)
            return mb_error_set(MB_ERROR, "%s: plugin %s could not be started: %s%s%s", x->origin, x->command, why,
                                x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");
        return dup_str(out, x->command);
    }
    if (!(copy = strdup(path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin")))
        return nomem();
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *candidate = NULL;
        if (asprintf(&candidate, "%s/%s", dir, x->command) < 0) {
            err = nomem();
            goto done;
        }
        if (access(candidate, X_OK) == 0 && stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
            *out = candidate;
            goto done;
        }
        free(candidate);
    }
    err = mb_error_set(MB_ERROR, "%s: plugin %s could not be started: not found in PATH%s%s", x->origin, x->command,
                       x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");

done:
    free(copy);
    return err;
}

/* Runs the plugin and collects its stdout; errors say how it failed. */
static int exec_run(exec_buf *out, const kube_exec_config *x)
{
    int err = 0, status = 0, devnull = -1, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    char **argv = NULL, **envp = NULL, *info_var = NULL, *exe = NULL, ebuf[128], line[320];
    size_t nargs = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false, exited = false, timed_out = false;
    pid_t pid = -1;
    exec_buf errs = {NULL, 0, 0, 4096, false};
    sigset_t none, defaults;
    long deadline = now_ms() + (x->timeout_ms > 0 ? x->timeout_ms : KUBE_EXEC_TIMEOUT_MS);

    memset(out, 0, sizeof(*out));
    out->limit = KC_MAX_PLUGIN_OUTPUT;
    if ((err = exec_resolve(&exe, x)) < 0)
        goto done;
    for (char **a = x->args; a && *a; a++)
        nargs++;
    if (!(argv = calloc(nargs + 2, sizeof(char *)))) {
        err = nomem();
        goto done;
    }
    argv[0] = x->command;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = x->args[i];
    if ((err = exec_envp(&envp, &info_var, x)) < 0)
        goto done;
    if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        err = mb_error_set(MB_EIO, "%s: cannot create pipes for plugin %s: %s", x->origin, x->command,
                           errno_text(errno, ebuf, sizeof(ebuf)));
        goto done;
    }
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    if (!fa_ok || !attr_ok || posix_spawn_file_actions_adddup2(&fa, devnull, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pout[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, perr[1], 2) != 0) {
        err = nomem();
        goto done;
    }
    /* its own process group (so a timeout kills its children too), default signals, nothing blocked */
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (const int *sig = (const int[]){SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0}; *sig; sig++)
        sigaddset(&defaults, *sig);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    log_debug("%s: running credential plugin %s", x->origin, x->command);
    int rc = posix_spawn(&pid, exe, &fa, &attr, argv, envp);
    if (rc != 0) {
        pid = -1;
        err = mb_error_set(MB_ERROR, "%s: plugin %s could not be started: %s%s%s", x->origin, x->command,
                           errno_text(rc, ebuf, sizeof(ebuf)), x->install_hint ? ". " : "",
                           x->install_hint ? x->install_hint : "");
        goto done;
    }
    close(pout[1]);
    close(perr[1]);
    pout[1] = perr[1] = -1;

    struct pollfd fds[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int r = poll(fds, 2, (int)(left > INT_MAX ? INT_MAX : left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = mb_error_set(MB_EIO, "%s: waiting for plugin %s: %s", x->origin, x->command,
                               errno_text(errno, ebuf, sizeof(ebuf)));
            goto done;
        }
        for (int i = 0; i < 2; i++) {
            char chunk[4096];
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                fds[i].fd = -1;
                continue;
            }
            if ((err = exec_buf_add(i == 0 ? out : &errs, chunk, (size_t)n)) < 0)
                goto done;
        }
    }
    while (!timed_out) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = true;
            break;
        }
        if (w < 0 && errno != EINTR) {
            err = mb_error_set(MB_EIO, "%s: waiting for plugin %s: %s", x->origin, x->command,
                               errno_text(errno, ebuf, sizeof(ebuf)));
            goto done;
        }
        if (deadline - now_ms() <= 0)
            timed_out = true;
        else
            nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    if (timed_out) {
        err = mb_error_set(MB_ETIMEOUT, "%s: plugin %s did not finish within %ld ms and was stopped", x->origin,
                           x->command, x->timeout_ms > 0 ? x->timeout_ms : KUBE_EXEC_TIMEOUT_MS);
        goto done;
    }
    first_line(line, sizeof(line), &errs);
    if (WIFSIGNALED(status)) {
        err = mb_error_set(MB_ERROR, "%s: plugin %s was killed by signal %d: %s", x->origin, x->command,
                           WTERMSIG(status), line);
        goto done;
    }
    if (WEXITSTATUS(status) != 0) {
        bool hint = WEXITSTATUS(status) == 127 && x->install_hint; /* the shell's "command not found" */
        err = mb_error_set(MB_ERROR, "%s: plugin %s exited with code %d: %s%s%s", x->origin, x->command,
                           WEXITSTATUS(status), line, hint ? ". " : "", hint ? x->install_hint : "");
        goto done;
    }
    if (out->overflow) {
        err = mb_error_set(MB_EJSON, "%s: plugin %s printed more than %ld bytes; that is not an ExecCredential",
                           x->origin, x->command, KC_MAX_PLUGIN_OUTPUT);
        goto done;
    }

done:
    if (pid > 0 && !exited) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    if (err < 0 && out->data) {
        OPENSSL_cleanse(out->data, out->cap);
        free(out->data);
        memset(out, 0, sizeof(*out));
    }
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 2; i++) {
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    if (devnull >= 0)
        close(devnull);
    free(errs.data);
    free(exe);
    free(argv);
    free(envp);
    free(info_var);
    return err;
}

/* RFC 3339 ("2024-05-01T10:00:00Z", with optional fraction and offset) to a time_t. */
static int parse_rfc3339(time_t *out, const char *s)
{
    struct tm tm;
    const char *p;
    long offset = 0;

    memset(&tm, 0, sizeof(tm));
    if (!(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
        return -1;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = 0, m = 0;
        if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2 || h > 23 || m > 59)
            return -1;
        offset = (h * 3600L + m * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    *out = timegm(&tm) - offset;
    return 0;
}

__attribute__((format(printf, 2, 3)))
static int not_exec_credential(const kube_exec_config *x, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return mb_error_set(MB_EJSON, "%s: plugin %s printed something that is not an ExecCredential: %s", x->origin,
                        x->command, why);
}

static int exec_parse(exec_result *out, const kube_exec_config *x, const exec_buf *b)
{
    int err = 0;
    cJSON *doc = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "kind"));
    const char *api = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "apiVersion"));
    const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "token"));
    const char *cert = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "clientCertificateData"));
    const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "clientKeyData"));
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(status, "expirationTimestamp");

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(doc)) {
        err = not_exec_credential(x, "its output is not a JSON object (%zu bytes)", b->len);
        goto done;
    }
    if (!kind || strcmp(kind, "ExecCredential") != 0) {
        err = not_exec_credential(x, "kind is \"%s\"", kind ? kind : "");
        goto done;
    }
    if (!api || strcmp(api, x->api_version) != 0) {
        err = not_exec_credential(x, "apiVersion is \"%s\" but the kubeconfig asks for %s", api ? api : "",
                                  x->api_version);
        goto done;
    }
    if (!cJSON_IsObject(status)) {
        err = not_exec_credential(x, "it has no status");
        goto done;
    }
    if (token && *token) {
        if ((err = dup_str(&out->token, token)) < 0)
            goto done;
        if ((err = token_clean(out->token)) < 0) {
            err = not_exec_credential(x, "status.token: %s", mb_error_last());
            goto done;
        }
    }
    if ((cert && *cert) != (key && *key)) {
        err = not_exec_credential(x, "status has %s without %s", cert && *cert ? "clientCertificateData" : "clientKeyData",
                                  cert && *cert ? "clientKeyData" : "clientCertificateData");
        goto done;
    }
    if (cert && *cert) {
        kube_pem c = {(char *)cert, strlen(cert)}, k = {(char *)key, strlen(key)};
        if ((err = pem_check(&c, PEM_CERT)) < 0) {
            if (err == MB_ENOMEM)
                goto done;
            err = not_exec_credential(x, "status.clientCertificateData: %s", mb_error_last());
            goto done;
        }
        if ((err = pem_check(&k, PEM_KEY)) < 0) {
            if (err == MB_ENOMEM)
                goto done;
            err = not_exec_credential(x, "status.clientKeyData: %s", mb_error_last());
            goto done;
        }
        if ((err = pem_check_pair(&c, &k)) < 0) {
            if (err == MB_ENOMEM)
                goto done;
            err = not_exec_credential(x, "status: %s", mb_error_last());
            goto done;
        }
        if ((err = pem_dup(&out->cert, &c)) < 0 || (err = pem_dup(&out->key, &k)) < 0)
            goto done;
    }
    if (!out->token && !out->cert.len) {
        err = not_exec_credential(x, "status has neither a token nor clientCertificateData and clientKeyData");
        goto done;
    }
    if (exp && !cJSON_IsNull(exp) &&
        (!cJSON_IsString(exp) || parse_rfc3339(&out->expiry, exp->valuestring) < 0 || out->expiry <= 0)) {
        err = not_exec_credential(x, "status.expirationTimestamp \"%s\" is not an RFC 3339 time",
                                  cJSON_IsString(exp) ? exp->valuestring : "");
        goto done;
    }

done:
    if (err < 0)
        exec_result_clear(out);
    if (doc && b->data) {
        /* the parsed tree holds the credential too: wipe its strings before freeing */
        for (const char *const *k = (const char *const[]){"token", "clientCertificateData", "clientKeyData", NULL}; *k;
             k++) {
            char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, *k));
            if (v)
                OPENSSL_cleanse(v, strlen(v));
        }
    }
    cJSON_Delete(doc);
    return err;
}

/* When a credential obtained at obtained and expiring at expiry should be replaced. */
static time_t refresh_at(time_t obtained, time_t expiry)
{
    time_t margin = (expiry - obtained) / 10;
    if (margin < KUBE_EXEC_REFRESH_MARGIN_S)
        margin = KUBE_EXEC_REFRESH_MARGIN_S;
    return expiry - margin;
}

static int exec_refresh(kube_config *cfg)
{
    int err = 0;
    time_t now = time(NULL);
    exec_buf b = {NULL, 0, 0, 0, false};
    exec_result r;

    if (cfg->exec_valid && (cfg->exec_expiry == 0 || now < refresh_at(cfg->exec_obtained, cfg->exec_expiry)))
        return 0;
    if (cfg->exec_valid && now < cfg->exec_expiry && now < cfg->exec_next_try)
        return 0; /* the last refresh failed a moment ago; the current credential still works */
    if ((err = exec_run(&b, cfg->exec)) == 0)
        err = exec_parse(&r, cfg->exec, &b);
    if (b.data) {
        OPENSSL_cleanse(b.data, b.cap);
        free(b.data);
    }
    if (err < 0) {
        if (cfg->exec_valid && now < cfg->exec_expiry) {
            cfg->exec_next_try = now + KUBE_EXEC_RETRY_S;
            log_warn("%s; using the current credential until it expires", mb_error_last());
            return 0;
        }
        return err;
    }
    secret_free(cfg->exec_token);
    pem_clear(&cfg->exec_cert);
    pem_clear(&cfg->exec_key);
    cfg->exec_token = r.token;
    cfg->exec_cert = r.cert;
    cfg->exec_key = r.key;
    cfg->exec_obtained = now;
    cfg->exec_expiry = r.expiry;
    cfg->exec_valid = true;
    if (r.expiry && r.expiry <= now)
        log_warn("%s: plugin %s returned a credential that has already expired", cfg->exec->origin,
                 cfg->exec->command);
    return 0;
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
        if ((err = exec_refresh(cfg)) < 0)
            goto done;
        bearer = cfg->exec_token;
        if (cfg->exec_cert.len) {
            cert = &cfg->exec_cert;
            key = &cfg->exec_key;
        }
    } else if (cfg->token_file) {
        token_file_refresh(cfg);
        bearer = cfg->cached_token;
    }
    if ((err = dup_str(&out->bearer, bearer)) < 0 || (err = pem_dup(&out->cert, cert)) < 0 ||
        (err = pem_dup(&out->key, key)) < 0)
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
    secret_free(c->bearer);
    pem_clear(&c->cert);
    pem_clear(&c->key);
    c->bearer = NULL;
}

void kube_config_free(kube_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source);
    free(cfg->context);
    free(cfg->server);
    free(cfg->namespace);
    free(cfg->tls_server_name);
    pem_clear(&cfg->ca);
    pem_clear(&cfg->client_cert);
    pem_clear(&cfg->client_key);
    secret_free(cfg->token);
    free(cfg->token_file);
    exec_config_free(cfg->exec);
    secret_free(cfg->cached_token);
    secret_free(cfg->exec_token);
    pem_clear(&cfg->exec_cert);
    pem_clear(&cfg->exec_key);
    pthread_mutex_destroy(&cfg->lock);
    free(cfg);
}
