/*
 * Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1), as
 * kubectl runs them: the plugin named by a kubeconfig user's exec section is
 * started with posix_spawn in its own process group, with the kubeconfig's
 * env and KUBERNETES_EXEC_INFO (the ExecCredential, with the cluster when
 * provideClusterInfo asks for it), stdin from /dev/null, a deadline and a cap
 * on what it prints; its ExecCredential is checked (kind, apiVersion, a token
 * or a certificate and key that belong together, an RFC 3339 expiry) and
 * kept in cfg until shortly before it expires. Errors say how the plugin
 * failed and quote the first line of its stderr, never its credential.
 */
#include "kube/config_private.h"
#include "util/base64.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/timefmt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
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

#define KC_MAX_PLUGIN_OUTPUT (1L << 20)
#define KC_EXEC_EXTENSION "client.authentication.k8s.io/exec"

/* ---- the exec configuration ------------------------------------------- */

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

void kube_exec_config_free(kube_exec_config *x)
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

/* The ExecCredential a plugin receives in KUBERNETES_EXEC_INFO. */
int kube_exec_info_build(kube_config *cfg, const cJSON *cluster_body)
{
    int err = 0;
    kube_exec_config *x = cfg->exec;
    cJSON *root = cJSON_CreateObject(), *spec = NULL, *cluster = NULL;
    char *ca64 = NULL, *printed = NULL;

    if (!root || !cJSON_AddStringToObject(root, "apiVersion", x->api_version) ||
        !cJSON_AddStringToObject(root, "kind", "ExecCredential") || !(spec = cJSON_AddObjectToObject(root, "spec")) ||
        !cJSON_AddFalseToObject(spec, "interactive")) {
        err = kube_config_nomem();
        goto done;
    }
    if (x->provide_cluster_info) {
        const cJSON *exts = cJSON_GetObjectItemCaseSensitive(cluster_body, "extensions");
        if (!(cluster = cJSON_AddObjectToObject(spec, "cluster")) ||
            !cJSON_AddStringToObject(cluster, "server", cfg->server) ||
            (cfg->tls_server_name && !cJSON_AddStringToObject(cluster, "tls-server-name", cfg->tls_server_name)) ||
            (cfg->insecure_skip_tls_verify && !cJSON_AddTrueToObject(cluster, "insecure-skip-tls-verify"))) {
            err = kube_config_nomem();
            goto done;
        }
        if (cfg->ca.len) {
            if ((err = mb_base64_encode(&ca64, cfg->ca.data, cfg->ca.len)) < 0)
                goto done;
            if (!cJSON_AddStringToObject(cluster, "certificate-authority-data", ca64)) {
                err = kube_config_nomem();
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
                    err = kube_config_nomem();
                    goto done;
                }
                break;
            }
        }
    }
    if (!(printed = cJSON_PrintUnformatted(root)) || (err = kube_config_strdup(&x->exec_info, printed)) < 0)
        err = err < 0 ? err : kube_config_nomem();

done:
    cJSON_free(printed);
    free(ca64);
    cJSON_Delete(root);
    return err;
}

/* ---- running the plugin ----------------------------------------------- */

typedef struct {
    char *token;
    kube_pem cert;
    kube_pem key;
    time_t expiry;
} exec_result;

static void exec_result_clear(exec_result *r)
{
    mb_secret_free(r->token);
    kube_pem_clear(&r->cert);
    kube_pem_clear(&r->key);
    memset(r, 0, sizeof(*r));
}

/* environ without the names the kubeconfig sets, then those, then KUBERNETES_EXEC_INFO. */
static int exec_envp(char ***out, char **info_var, const kube_exec_config *x)
{
    size_t n = 0, k = 0, extra = 0;
    char **envp;

    *out = NULL;
    if (asprintf(info_var, "KUBERNETES_EXEC_INFO=%s", x->exec_info ? x->exec_info : "") < 0) {
        *info_var = NULL;
        return kube_config_nomem();
    }
    for (char **e = environ; e && *e; e++)
        n++;
    for (char **e = x->env; e && *e; e++)
        extra++;
    if (!(envp = calloc(n + extra + 2, sizeof(char *))))
        return kube_config_nomem();
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
            return kube_config_nomem();
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
            why = kube_errno_text(errno, ebuf, sizeof(ebuf));
        else if (!S_ISREG(st.st_mode))
            why = "it is not a regular file";
        if (why)
            return mb_error_set(MB_ERROR, "%s: plugin %s could not be started: %s%s%s", x->origin, x->command, why,
                                x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");
        return kube_config_strdup(out, x->command);
    }
    if (!(copy = strdup(path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin")))
        return kube_config_nomem();
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *candidate = NULL;
        if (asprintf(&candidate, "%s/%s", dir, x->command) < 0) {
            err = kube_config_nomem();
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
    long deadline = mb_monotonic_ms() + (x->timeout_ms > 0 ? x->timeout_ms : KUBE_EXEC_TIMEOUT_MS);

    memset(out, 0, sizeof(*out));
    out->limit = KC_MAX_PLUGIN_OUTPUT;
    if ((err = exec_resolve(&exe, x)) < 0)
        goto done;
    for (char **a = x->args; a && *a; a++)
        nargs++;
    if (!(argv = calloc(nargs + 2, sizeof(char *)))) {
        err = kube_config_nomem();
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
                           kube_errno_text(errno, ebuf, sizeof(ebuf)));
        goto done;
    }
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    if (!fa_ok || !attr_ok || posix_spawn_file_actions_adddup2(&fa, devnull, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pout[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, perr[1], 2) != 0) {
        err = kube_config_nomem();
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
                           kube_errno_text(rc, ebuf, sizeof(ebuf)), x->install_hint ? ". " : "",
                           x->install_hint ? x->install_hint : "");
        goto done;
    }
    close(pout[1]);
    close(perr[1]);
    pout[1] = perr[1] = -1;

    struct pollfd fds[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        long left = deadline - mb_monotonic_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int r = poll(fds, 2, (int)(left > INT_MAX ? INT_MAX : left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = mb_error_set(MB_EIO, "%s: waiting for plugin %s: %s", x->origin, x->command,
                               kube_errno_text(errno, ebuf, sizeof(ebuf)));
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
                               kube_errno_text(errno, ebuf, sizeof(ebuf)));
            goto done;
        }
        if (deadline - mb_monotonic_ms() <= 0)
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
        mb_secret_free_len(out->data, out->cap);
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

__attribute__((format(printf, 2, 3))) static int not_exec_credential(const kube_exec_config *x, const char *fmt, ...)
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
        if ((err = kube_config_strdup(&out->token, token)) < 0)
            goto done;
        if ((err = kube_token_clean(out->token)) < 0) {
            err = not_exec_credential(x, "status.token: %s", mb_error_last());
            goto done;
        }
    }
    if ((cert && *cert) != (key && *key)) {
        err = not_exec_credential(x, "status has %s without %s",
                                  cert && *cert ? "clientCertificateData" : "clientKeyData",
                                  cert && *cert ? "clientKeyData" : "clientCertificateData");
        goto done;
    }
    if (cert && *cert) {
        kube_pem c = {(char *)cert, strlen(cert)}, k = {(char *)key, strlen(key)};
        if ((err = kube_pem_check(&c, KUBE_PEM_CERT)) < 0) {
            if (err == MB_ENOMEM)
                goto done;
            err = not_exec_credential(x, "status.clientCertificateData: %s", mb_error_last());
            goto done;
        }
        if ((err = kube_pem_check(&k, KUBE_PEM_KEY)) < 0) {
            if (err == MB_ENOMEM)
                goto done;
            err = not_exec_credential(x, "status.clientKeyData: %s", mb_error_last());
            goto done;
        }
        if ((err = kube_pem_check_pair(&c, &k)) < 0) {
            if (err == MB_ENOMEM)
                goto done;
            err = not_exec_credential(x, "status: %s", mb_error_last());
            goto done;
        }
        if ((err = kube_pem_dup(&out->cert, &c)) < 0 || (err = kube_pem_dup(&out->key, &k)) < 0)
            goto done;
    }
    if (!out->token && !out->cert.len) {
        err = not_exec_credential(x, "status has neither a token nor clientCertificateData and clientKeyData");
        goto done;
    }
    if (exp && !cJSON_IsNull(exp) &&
        (!cJSON_IsString(exp) || timefmt_parse(&out->expiry, exp->valuestring) < 0 || out->expiry <= 0)) {
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

int kube_exec_refresh(kube_config *cfg)
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
    mb_secret_free_len(b.data, b.cap);
    if (err < 0) {
        if (cfg->exec_valid && now < cfg->exec_expiry) {
            cfg->exec_next_try = now + KUBE_EXEC_RETRY_S;
            log_warn("%s; using the current credential until it expires", mb_error_last());
            return 0;
        }
        return err;
    }
    mb_secret_free(cfg->exec_token);
    kube_pem_clear(&cfg->exec_cert);
    kube_pem_clear(&cfg->exec_key);
    cfg->exec_token = r.token;
    cfg->exec_cert = r.cert;
    cfg->exec_key = r.key;
    cfg->exec_obtained = now;
    cfg->exec_expiry = r.expiry;
    cfg->exec_valid = true;
    if (r.expiry && r.expiry <= now)
        log_warn("%s: plugin %s returned a credential that has already expired", cfg->exec->origin, cfg->exec->command);
    return 0;
}
