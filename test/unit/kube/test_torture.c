/*
 * Allocation-failure torture of kube's pure parts (test/support/torture.h):
 * kubeconfig loading (tokens, token files, certificate files and data, exec
 * plugin settings, the $KUBECONFIG merge, files that must be refused),
 * in-cluster loading from a service-account directory, the credentials of a
 * request (static and file tokens, certificates: exec plugins run programs and
 * are not here), the watch stream parser fed in pieces, and metav1.Status
 * parsing. Every run that succeeds makes the same configuration, events or
 * status as the unhindered one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/watch.h"
#include "torture.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * OpenSSL checks certificates and keys while a configuration loads. It
 * recovers from some of its own failed allocations (so a load may succeed
 * after one, with the same result), and does not report some others:
 * PEM_read_bio_ex returns no error when its last two allocations fail, and
 * the block then reads as malformed (pem_misread).
 */

/* ---- configuration ------------------------------------------------------------------- */

typedef enum { LOAD_FILE, LOAD_INCLUSTER } load_how;

typedef struct {
    load_how how;
    const char *path; /* LOAD_FILE: NULL for $KUBECONFIG */
    const char *context;
    const char *root; /* LOAD_INCLUSTER */
    bool credentials; /* also the credentials of one request */
    kube_config *cfg;
    int rc;
    transcript t;
} config_ctx;

/* A PEM block refused as malformed: what an unreported failed allocation inside OpenSSL looks like. */
static bool pem_misread(void *ctx, int rc)
{
    (void)ctx;
    const char *m = mb_error_last();
    return rc == MB_EINVAL &&
           (strstr(m, "not a PEM") || strstr(m, "contains no PEM certificate") || strstr(m, "do not belong together"));
}

static void pem_print(transcript *t, const char *what, const kube_pem *p)
{
    tprintf(t, "%s %zu %.40s\n", what, p->len, p->data ? p->data : "-");
}

static int config_once(config_ctx *c);

static int config_run(void *arg)
{
    config_ctx *c = arg;
    return c->rc = config_once(c);
}

static int config_once(config_ctx *c)
{
    kube_credentials cr = {0};
    int err;

    err = c->how == LOAD_FILE ? kube_config_load(&c->cfg, c->path, c->context)
                              : kube_config_load_incluster(&c->cfg, c->root);
    if (err < 0) {
        tprintf(&c->t, "error %s\n", mb_error_last());
        return err;
    }
    const kube_config *g = c->cfg;
    tprintf(&c->t, "%s|%s|%s|%s|%s|%d|%s|%s\n", g->source, g->context ? g->context : "-", g->server,
            g->namespace ? g->namespace : "-", g->tls_server_name ? g->tls_server_name : "-",
            g->insecure_skip_tls_verify, g->token ? g->token : "-", g->token_file ? g->token_file : "-");
    pem_print(&c->t, "ca", &g->ca);
    pem_print(&c->t, "cert", &g->client_cert);
    pem_print(&c->t, "key", &g->client_key);
    if (g->exec) {
        tprintf(&c->t, "exec %s %s %d %s %s %ld\n", g->exec->command, g->exec->api_version,
                g->exec->provide_cluster_info, g->exec->install_hint ? g->exec->install_hint : "-", g->exec->origin,
                g->exec->timeout_ms);
        for (char **a = g->exec->args; a && *a; a++)
            tprintf(&c->t, "arg %s\n", *a);
        for (char **e = g->exec->env; e && *e; e++)
            tprintf(&c->t, "env %s\n", *e);
        tprintf(&c->t, "info %s\n", g->exec->exec_info ? g->exec->exec_info : "-");
    }
    if (c->credentials) {
        if ((err = kube_config_credentials(&cr, c->cfg)) < 0)
            return err;
        tprintf(&c->t, "bearer %s\n", cr.bearer ? cr.bearer : "-");
        pem_print(&c->t, "cred cert", &cr.cert);
        pem_print(&c->t, "cred key", &cr.key);
        kube_credentials_clear(&cr);
    }
    return 0;
}

static void config_check(void *arg)
{
    config_ctx *c = arg;
    if (c->rc < 0 && torture_refused())
        return; /* the expected error, or a PEM block misread after a failed allocation (pem_misread) */
    transcript_check(&c->t);
}

static void config_clear(void *arg)
{
    config_ctx *c = arg;
    kube_config_free(c->cfg);
    c->cfg = NULL;
    transcript_reset(&c->t);
}

static void config_torture(config_ctx *c, int expect, const char *needle)
{
    torture_case tc = {.name = c->path   ? c->path
                               : c->root ? c->root
                                         : "$KUBECONFIG",
                       .run = config_run,
                       .check = config_check,
                       .clear = config_clear,
                       .ctx = c,
                       .expect = expect,
                       .may_succeed = true,
                       .allowed = pem_misread};
    assert_true(torture_check(&tc) > 0);
    if (needle && !strstr(c->t.first, needle))
        fail_msg("\"%s\" does not contain \"%s\"", c->t.first, needle);
    transcript_free(&c->t);
}

/* Writes dir/rel, creating its directories. */
static void write_at(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) < sizeof(path));
    for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh directory for the files a test writes, removed by the group teardown. */
static char tmpdir[512];

static void load_torture(const char *rel, const char *context, bool credentials, int expect, const char *needle)
{
    static config_ctx c;
    char path[1024];
    snprintf(path, sizeof(path), "%s", fixture_path(rel));
    c = (config_ctx){.how = LOAD_FILE, .path = path, .context = context, .credentials = credentials};
    config_torture(&c, expect, needle);
}

static void test_kubeconfig_files(void **state)
{
    (void)state;
    load_torture("kubeconfig/token.yaml", NULL, true, 0, "bearer alice-static-token");
    load_torture("kubeconfig/token.yaml", "prod", true, 0, "bearer file-token-1");
    load_torture("kubeconfig/certs-files.yaml", NULL, true, 0, "cred cert");
    load_torture("kubeconfig/certs-data.yaml", NULL, true, 0, "cred key");
    load_torture("kubeconfig/insecure.yaml", NULL, false, 0, "|1|");
    /* exec.yaml has twenty users: one of the same shape is enough here */
    char ca[1024], path[1024], text[4096];
    snprintf(ca, sizeof(ca), "%s", fixture_path("kubeconfig/pki/ca.crt"));
    snprintf(text, sizeof(text),
             "apiVersion: v1\n"
             "kind: Config\n"
             "current-context: env\n"
             "clusters:\n"
             "- name: c\n"
             "  cluster:\n"
             "    server: https://exec.example:6443\n"
             "    certificate-authority: %s\n"
             "    tls-server-name: exec.internal\n"
             "    extensions:\n"
             "    - {name: client.authentication.k8s.io/exec, extension: {audience: membrane-test}}\n"
             "contexts:\n"
             "- {name: env, context: {cluster: c, user: env}}\n"
             "users:\n"
             "- name: env\n"
             "  user:\n"
             "    exec:\n"
             "      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: ./plugins/exec-plugin.sh\n"
             "      args: [env, from-args]\n"
             "      env: [{name: MB_GREETING, value: hello}]\n"
             "      provideClusterInfo: true\n"
             "      interactiveMode: IfAvailable\n"
             "      installHint: install it with apt-get\n",
             ca);
    write_at(tmpdir, "exec.yaml", text);
    snprintf(path, sizeof(path), "%s/exec.yaml", tmpdir);
    static config_ctx c;
    c = (config_ctx){.how = LOAD_FILE, .path = path};
    config_torture(&c, 0, "env MB_GREETING=hello");
}

static void test_kubeconfig_refused(void **state)
{
    (void)state;
    load_torture("kubeconfig/token.yaml", "staging", false, MB_EINVAL, "context \"staging\" not found");
    load_torture("kubeconfig/bad/key-mismatch.yaml", NULL, false, MB_EINVAL, "error kubeconfig");
    load_torture("kubeconfig/bad/bad-base64.yaml", NULL, false, MB_EINVAL, "error kubeconfig");
    load_torture("kubeconfig/bad/exec-env-no-value.yaml", NULL, false, MB_EINVAL, "error kubeconfig");
    load_torture("kubeconfig/bad/missing-user-ref.yaml", NULL, false, MB_EINVAL, "error kubeconfig");
    load_torture("kubeconfig/bad/syntax.yaml", NULL, false, MB_EINVAL, "error kubeconfig");
}

static void test_kubeconfig_merge(void **state)
{
    (void)state;
    static config_ctx c;
    char list[4096], a[1024], b[1024], d[1024];
    snprintf(a, sizeof(a), "%s", fixture_path("kubeconfig/merge/a.yaml"));
    snprintf(b, sizeof(b), "%s", fixture_path("kubeconfig/merge/sub/b.yaml"));
    snprintf(d, sizeof(d), "%s", fixture_path("kubeconfig/merge/c.yaml"));
    snprintf(list, sizeof(list), "%s:/nonexistent/membrane.yaml::%s:%s", a, b, d);
    setenv("KUBECONFIG", list, 1);
    c = (config_ctx){.how = LOAD_FILE, .context = "ctx-c", .credentials = true};
    config_torture(&c, 0, "bearer ua-token");
    c = (config_ctx){.how = LOAD_FILE, .credentials = true};
    config_torture(&c, 0, "bearer b-file-token");
    unsetenv("KUBECONFIG");
}

static void test_incluster(void **state)
{
    (void)state;
    static config_ctx c;
    char root[1024];
    char *ca = fixture_read("kubeconfig/pki/ca.crt", NULL);

    snprintf(root, sizeof(root), "%s/root", tmpdir);
    assert_non_null(ca);
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/token", "sa-token\n");
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/ca.crt", ca);
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/namespace", "membrane-system\n");
    free(ca);
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    c = (config_ctx){.how = LOAD_INCLUSTER, .root = root, .credentials = true};
    config_torture(&c, 0, "bearer sa-token");

    /* a ca.crt that holds no certificate is refused */
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "garbage\n");
    c = (config_ctx){.how = LOAD_INCLUSTER, .root = root};
    config_torture(&c, MB_EINVAL, "contains no PEM certificate");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

/* ---- the watch stream parser ----------------------------------------------------------- */

static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"10\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"11\"},"
    "\"status\":{\"phase\":\"Running\",\"message\":\"line\\nbreak inside a string\"}}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"bm\",\"resourceVersion\":\"12\"}}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"13\"}}}\r\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"InternalError\","
    "\"message\":\"boom\",\"code\":500}}\n"
    "{ \"type\" : \"ADDED\" , \"object\" : {\"metadata\":{\"name\":\"c\"}} }\n";

typedef struct {
    const char *stream;
    size_t piece; /* bytes fed at a time */
    kube_watch_parser *p;
    transcript t;
} watch_ctx;

static int watch_event(void *ctx, kube_watch_type type, cJSON *object)
{
    watch_ctx *w = ctx;
    const char *name = json_str(object, "metadata", "name", NULL);
    tprintf(&w->t, "%s %s %s;", kube_watch_type_name(type), name ? name : json_str(object, "reason", NULL),
            json_str(object, "metadata", "resourceVersion", NULL)
                ? json_str(object, "metadata", "resourceVersion", NULL)
                : "-");
    cJSON_Delete(object);
    return 0;
}

static int watch_run(void *arg)
{
    watch_ctx *w = arg;
    size_t len = strlen(w->stream);
    int err;
    if ((err = kube_watch_parser_new(&w->p, watch_event, w)) < 0)
        return err;
    for (size_t off = 0; off < len; off += w->piece) {
        size_t n = len - off < w->piece ? len - off : w->piece;
        if ((err = kube_watch_parser_feed(w->p, w->stream + off, n)) < 0)
            return err;
    }
    tprintf(&w->t, "pending %zu", kube_watch_parser_pending(w->p));
    return 0;
}

static void watch_check(void *arg)
{
    transcript_check(&((watch_ctx *)arg)->t);
}

static void watch_clear(void *arg)
{
    watch_ctx *w = arg;
    kube_watch_parser_free(w->p);
    w->p = NULL;
    transcript_reset(&w->t);
}

static void test_watch_parser(void **state)
{
    (void)state;
    static watch_ctx w;
    static const size_t pieces[] = {sizeof(STREAM), 7, 1};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        w = (watch_ctx){.stream = STREAM, .piece = pieces[i]};
        /* cJSON cannot tell a failed allocation from malformed text: the event is then refused as not JSON */
        torture_case tc = {.name = "kube_watch_parser",
                           .run = watch_run,
                           .check = watch_check,
                           .clear = watch_clear,
                           .ctx = &w,
                           .errors = {MB_EJSON}};
        assert_true(torture_check(&tc) > 0);
        assert_string_equal(w.t.first, "ADDED a 10;MODIFIED a 11;BOOKMARK bm 12;DELETED b 13;ERROR InternalError -;"
                                       "ADDED c -;pending 0");
        transcript_free(&w.t);
    }
    /* a malformed event ends the stream with MB_EJSON */
    w = (watch_ctx){.stream =
                        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"ADDED\",\"obj\n",
                    .piece = 5};
    torture_case bad = {.name = "kube_watch_parser (malformed)",
                        .run = watch_run,
                        .clear = watch_clear,
                        .ctx = &w,
                        .expect = MB_EJSON};
    assert_true(torture_check(&bad) > 0);
}

/* ---- metav1.Status ----------------------------------------------------------------------- */

typedef struct {
    long http;
    const char *body;
    int want;
    kube_status st;
    transcript t;
} status_ctx;

/* Parsing a Status cannot fail: the code is the HTTP status's; a failed allocation only makes the message plainer. */
static int status_run(void *arg)
{
    status_ctx *s = arg;
    int code = kube_status_parse(&s->st, s->http, s->body, s->body ? strlen(s->body) : 0);
    tprintf(&s->t, "%d %ld %s %ld", code, s->st.code, s->st.reason, s->st.retry_after);
    return code == s->want ? 0 : MB_ERROR;
}

static void status_clear(void *arg)
{
    transcript_reset(&((status_ctx *)arg)->t);
}

static void test_status(void **state)
{
    (void)state;
    static status_ctx s;
    static const struct {
        long http;
        const char *body;
        int want;
    } cases[] = {
        {409,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"the object has been "
         "modified\",\"reason\":\"Conflict\",\"details\":{\"name\":\"x\",\"kind\":\"configmaps\"},\"code\":409}",
         MB_ECONFLICT},
        {429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":3},\"code\":429}",
         MB_EHTTP},
        {404, "404 page not found\n", MB_ENOTFOUND},
        {500, "{\"kind\":\"Status\",\"message\":", MB_EHTTP},
        {403, NULL, MB_EFORBIDDEN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s = (status_ctx){.http = cases[i].http, .body = cases[i].body, .want = cases[i].want};
        torture_case tc = {.name = "kube_status_parse",
                           .run = status_run,
                           .clear = status_clear,
                           .ctx = &s,
                           .may_succeed = true};
        torture_check(&tc);
    }
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/mb-torture-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    /* loading logs warnings (an insecure cluster): keep them out of the test's output */
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_files), cmocka_unit_test(test_kubeconfig_refused),
        cmocka_unit_test(test_kubeconfig_merge), cmocka_unit_test(test_incluster),
        cmocka_unit_test(test_watch_parser),     cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
