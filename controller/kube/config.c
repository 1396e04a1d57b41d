/*
 * Kubernetes client configuration: finds and merges kubeconfig files the way
 * kubectl does (explicit path, $KUBECONFIG, ~/.kube/config, then in-cluster),
 * picks a context, and turns its cluster and user into a kube_config with PEM
 * bytes in memory; the in-cluster service-account configuration too. The
 * credentials that change while the process runs are credentials.c's, the
 * exec plugins exec.c's. Errors name the file and the field ("kubeconfig F:
 * users[\"u\"].user.token: ..."); tokens and keys are never logged and are
 * wiped when freed.
 */
#include "kube/config_private.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/yaml.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KC_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KC_EXEC_V1 "client.authentication.k8s.io/v1"
#define KC_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

/* ---- paths ------------------------------------------------------------ */

/* dir/path, or path when it is absolute (or dir is NULL). */
static int path_resolve(char **out, const char *dir, const char *path)
{
    *out = NULL;
    if (path[0] == '/' || !dir || strcmp(dir, ".") == 0)
        return kube_config_strdup(out, path);
    if (asprintf(out, "%s/%s", dir, path) < 0) {
        *out = NULL;
        return kube_config_nomem();
    }
    return 0;
}

static int dir_of(char **out, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return kube_config_strdup(out, ".");
    if (slash == path)
        return kube_config_strdup(out, "/");
    if (!(*out = strndup(path, (size_t)(slash - path))))
        return kube_config_nomem();
    return 0;
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

__attribute__((format(printf, 4, 5))) static int field_error(int code, const kc_scope *s, const char *field,
                                                             const char *fmt, ...)
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
static int field_pem(kube_pem *out, const kc_scope *s, const cJSON *body, const char *file_key, const char *data_key,
                     kube_pem_kind kind)
{
    int err = 0;
    const char *data = NULL, *file = NULL, *field = NULL;
    char *path = NULL;

    if ((err = field_str(&data, s, body, data_key)) < 0 || (err = field_str(&file, s, body, file_key)) < 0)
        return err;
    if (data) {
        field = data_key;
        if (file)
            log_warn("kubeconfig %s: %s sets both %s and %s; using %s", s->file->path, s->where, file_key, data_key,
                     data_key);
        if ((err = mb_base64_decode(&out->data, &out->len, data)) == 0 && out->len == 0)
            err = mb_error_set(MB_EINVAL, "empty after base64 decoding");
        if (err < 0) {
            err = field_wrap(err, s, data_key);
            goto done;
        }
    } else if (file) {
        field = file_key;
        if ((err = path_resolve(&path, s->file->dir, file)) < 0)
            goto done;
        if ((err = kube_file_read(&out->data, &out->len, path, NULL)) < 0) {
            err = field_wrap(err, s, file_key);
            goto done;
        }
    } else {
        return 0;
    }
    if ((err = kube_pem_check(out, kind)) < 0) {
        if (path)
            err = mb_error_wrap(err, "%s", path);
        err = field_wrap(err, s, field);
    }

done:
    if (err < 0)
        kube_pem_clear(out);
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
            return mb_error_set(MB_EINVAL, "kubeconfig %s: %s: not a list (write \"- name: ...\" entries)", f->path,
                                kc_lists[l]);
        for (const cJSON *el = list->child; el; el = el->next, i++) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(el, "name");
            const cJSON *body = cJSON_GetObjectItemCaseSensitive(el, kc_bodies[l]);
            if (!cJSON_IsObject(el))
                return mb_error_set(MB_EINVAL, "kubeconfig %s: %s[%d]: not a mapping", f->path, kc_lists[l], i);
            if (!cJSON_IsString(name) || !name->valuestring[0])
                return mb_error_set(MB_EINVAL, "kubeconfig %s: %s[%d].name: missing or not a string", f->path,
                                    kc_lists[l], i);
            if (body && !cJSON_IsNull(body) && !cJSON_IsObject(body))
                return mb_error_set(MB_EINVAL, "kubeconfig %s: %s[\"%s\"].%s: not a mapping", f->path, kc_lists[l],
                                    name->valuestring, kc_bodies[l]);
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
            return kube_config_nomem();
        }
        return 0;
    }
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
        return field_error(MB_EINVAL, s, "server", "\"%s\" is not an http or https URL", server);
    if (!(*out = strndup(server, len)))
        return kube_config_nomem();
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
    if ((err = field_str(&sni, s, body, "tls-server-name")) < 0 ||
        (err = kube_config_strdup(&cfg->tls_server_name, sni)) < 0)
        return err;
    if ((err = field_bool(&cfg->insecure_skip_tls_verify, s, body, "insecure-skip-tls-verify")) < 0)
        return err;
    if ((err = field_pem(&cfg->ca, s, body, "certificate-authority", "certificate-authority-data", KUBE_PEM_CERTS)) < 0)
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
        return kube_config_nomem();
    for (const cJSON *el = n ? v->child : NULL; el; el = el->next, i++) {
        if (!cJSON_IsString(el))
            return field_error(MB_EINVAL, s, key, "item %d is not a string (quote it)", i);
        if (!((*out)[i] = strdup(el->valuestring)))
            return kube_config_nomem();
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
        return kube_config_nomem();
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
            return kube_config_nomem();
        }
    }
    return 0;
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
        return kube_config_nomem();
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
    if ((err = field_str(&hint, &s, body, "installHint")) < 0 ||
        (err = kube_config_strdup(&x->install_hint, hint)) < 0 ||
        (err = kube_config_strdup(&x->api_version, api)) < 0 ||
        (err = field_bool(&x->provide_cluster_info, &s, body, "provideClusterInfo")) < 0 ||
        (err = str_list(&x->args, &s, body, "args")) < 0 || (err = env_list(&x->env, &s, body)) < 0)
        goto done;
    if (asprintf(&x->origin, "kubeconfig %s: %s", s.file->path, s.where) < 0) {
        x->origin = NULL;
        err = kube_config_nomem();
        goto done;
    }
    *out = x;
    x = NULL;

done:
    kube_exec_config_free(x);
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
            return field_error(MB_EINVAL, s, *k,
                               "basic authentication is not supported; use a token, a client "
                               "certificate or an exec plugin");
    for (const char *const *k = (const char *const[]){"as", "as-uid", "as-groups", "as-user-extra", NULL}; *k; k++)
        if (cJSON_GetObjectItemCaseSensitive(body, *k))
            return field_error(MB_EINVAL, s, *k, "impersonation is not supported");

    if ((err = field_str(&token, s, body, "token")) < 0 || (err = field_str(&token_file, s, body, "tokenFile")) < 0)
        return err;
    if (exec && !cJSON_IsNull(exec) && (token || token_file))
        return field_error(MB_EINVAL, s, "exec", "cannot be combined with token or tokenFile; keep one of them");
    if (token) {
        if ((err = kube_config_strdup(&cfg->token, token)) < 0)
            return err;
        if ((err = kube_token_clean(cfg->token)) < 0)
            return field_wrap(err, s, "token");
    }
    if (token_file) {
        if ((err = path_resolve(&cfg->token_file, s->file->dir, token_file)) < 0)
            return err;
        if ((err = kube_token_file_load(cfg)) < 0)
            return field_wrap(err, s, "tokenFile");
    }
    if ((err = field_pem(&cfg->client_cert, s, body, "client-certificate", "client-certificate-data", KUBE_PEM_CERT)) <
            0 ||
        (err = field_pem(&cfg->client_key, s, body, "client-key", "client-key-data", KUBE_PEM_KEY)) < 0)
        return err;
    if (cfg->client_cert.len && !cfg->client_key.len)
        return field_error(MB_EINVAL, s, NULL, "client-certificate is set but client-key is not; set both or neither");
    if (cfg->client_key.len && !cfg->client_cert.len)
        return field_error(MB_EINVAL, s, NULL, "client-key is set but client-certificate is not; set both or neither");
    if (cfg->client_cert.len && (err = kube_pem_check_pair(&cfg->client_cert, &cfg->client_key)) < 0)
        return err == MB_ENOMEM
                   ? err
                   : field_error(MB_EINVAL, s, NULL, "client-certificate and client-key do not belong together");
    if (exec && !cJSON_IsNull(exec) && (err = kc_exec(&cfg->exec, s, exec)) < 0)
        return err;
    return 0;
}

/* ---- loading ---------------------------------------------------------- */

static int config_new(kube_config **out)
{
    kube_config *cfg = calloc(1, sizeof(*cfg));
    *out = NULL;
    if (!cfg)
        return kube_config_nomem();
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
    if (cfg->exec && (err = kube_exec_info_build(cfg, cluster.body)) < 0)
        goto done;
    if ((err = kube_config_strdup(&cfg->source, set->source)) < 0 ||
        (err = kube_config_strdup(&cfg->context, name)) < 0 || (err = kube_config_strdup(&cfg->namespace, ns)) < 0)
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
    if ((err = kube_file_read(&text, &len, path, NULL)) < 0) {
        if (err == MB_ENOTFOUND && optional) {
            log_debug("kubeconfig %s does not exist; skipped", path);
            mb_error_clear();
            return 0;
        }
        return mb_error_wrap(err, "kubeconfig %s", path);
    }
    if (asprintf(&source, "kubeconfig %s", path) < 0) {
        source = NULL;
        err = kube_config_nomem();
        goto done;
    }
    if ((err = mb_yaml_parse(&f.doc, text, len, source)) < 0 || (err = kube_config_strdup(&f.path, path)) < 0 ||
        (err = dir_of(&f.dir, path)) < 0)
        goto done;
    if ((err = kc_file_check(&f)) < 0)
        goto done;
    kc_file *grown = realloc(set->files, (set->n + 1) * sizeof(*grown));
    if (!grown) {
        err = kube_config_nomem();
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
    mb_secret_free_len(text, len);
    return err;
}

static int kc_set_source(kc_set *set)
{
    size_t len = 1;
    for (size_t i = 0; i < set->n; i++)
        len += strlen(set->files[i].path) + 1;
    if (!(set->source = calloc(1, len)))
        return kube_config_nomem();
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
        err = kube_config_nomem();
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
            return kube_config_nomem();
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
        err = kube_config_nomem();
        goto done;
    }
    if ((err = kube_config_strdup(&cfg->source, "in-cluster")) < 0)
        goto done;

    if (asprintf(&cfg->token_file, "%s" KC_SA_DIR "/token", root) < 0) {
        cfg->token_file = NULL;
        err = kube_config_nomem();
        goto done;
    }
    if ((err = kube_token_file_load(cfg)) < 0) {
        err = mb_error_wrap(err, "in-cluster configuration: the service-account token");
        goto done;
    }

    if (asprintf(&path, "%s" KC_SA_DIR "/ca.crt", root) < 0) {
        path = NULL;
        err = kube_config_nomem();
        goto done;
    }
    err = kube_file_read(&cfg->ca.data, &cfg->ca.len, path, NULL);
    if (err == MB_ENOTFOUND) {
        log_warn("in-cluster configuration: %s does not exist; verifying the API server with the system's CAs", path);
        err = 0;
    } else if (err < 0 || (err = kube_pem_check(&cfg->ca, KUBE_PEM_CERTS)) < 0) {
        err = mb_error_wrap(err, "in-cluster configuration: %s", path);
        goto done;
    }
    free(path);

    if (asprintf(&path, "%s" KC_SA_DIR "/namespace", root) < 0) {
        path = NULL;
        err = kube_config_nomem();
        goto done;
    }
    /* the namespace file is optional: without it there is no default namespace */
    if ((err = kube_file_read(&ns, &len, path, NULL)) == MB_ENOMEM)
        goto done;
    if (err == 0) {
        size_t n = strcspn(ns, " \t\r\n");
        ns[n] = '\0';
        if (n && (err = kube_config_strdup(&cfg->namespace, ns)) < 0)
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

void kube_config_free(kube_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source);
    free(cfg->context);
    free(cfg->server);
    free(cfg->namespace);
    free(cfg->tls_server_name);
    kube_pem_clear(&cfg->ca);
    kube_pem_clear(&cfg->client_cert);
    kube_pem_clear(&cfg->client_key);
    mb_secret_free(cfg->token);
    free(cfg->token_file);
    kube_exec_config_free(cfg->exec);
    mb_secret_free(cfg->cached_token);
    mb_secret_free(cfg->exec_token);
    kube_pem_clear(&cfg->exec_cert);
    kube_pem_clear(&cfg->exec_key);
    pthread_mutex_destroy(&cfg->lock);
    free(cfg);
}
