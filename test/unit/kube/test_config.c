/*
 * Kubernetes client configuration: every kubeconfig auth shape, context
 * selection, the $KUBECONFIG merge, load precedence, relative paths, tokenFile
 * and in-cluster token rotation, exec credential plugins (a shell-script
 * fixture) and the messages bad files give. Pure: temp dirs and env vars, no
 * network.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "kube/config.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- per-test environment --------------------------------------------- */

typedef struct {
    char dir[256]; /* a fresh temp dir */
    char *log;     /* what was logged (text format, warn and above unless a test lowers it) */
    size_t log_len;
    FILE *log_file;
} env;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof(*e));
    const char *tmp = getenv("TMPDIR");
    char counter[300];
    if (!e)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "%s/mb-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir))
        return -1;
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    setenv("HOME", e->dir, 1); /* no .kube/config there */
    snprintf(counter, sizeof(counter), "%s/counter", e->dir);
    setenv("MB_TEST_PLUGIN_COUNTER", counter, 1);
    e->log_file = open_memstream(&e->log, &e->log_len);
    mb_log_setup(MB_LOG_TEXT, MB_LOG_WARN, e->log_file);
    mb_error_clear();
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_WARN, NULL);
    fclose(e->log_file);
    free(e->log);
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e);
    return 0;
}

/* Writes dir/rel (creating parent directories). */
static void write_at(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
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

static char *path_at(const char *dir, const char *rel)
{
    static _Thread_local char paths[4][512];
    static _Thread_local int next;
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, rel);
    return p;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

static void assert_not_contains(const char *haystack, const char *needle)
{
    if (haystack && strstr(haystack, needle))
        fail_msg("\"%s\" contains \"%s\"", haystack, needle);
}

static const char *logged(env *e)
{
    fflush(e->log_file);
    return e->log ? e->log : "";
}

static kube_config *load_ok(const char *path, const char *context)
{
    kube_config *cfg = NULL;
    if (kube_config_load(&cfg, path, context) < 0)
        fail_msg("load %s failed: %s", path ? path : "(default)", mb_error_last());
    assert_non_null(cfg);
    return cfg;
}

static kube_config *load_fixture(const char *rel, const char *context)
{
    return load_ok(fixture_path(rel), context);
}

/* The bearer token of the next request (freed by the caller); fails the test on error. */
static char *bearer_of(kube_config *cfg)
{
    kube_credentials c;
    if (kube_config_credentials(&c, cfg) < 0)
        fail_msg("credentials failed: %s", mb_error_last());
    char *b = c.bearer ? strdup(c.bearer) : NULL;
    kube_credentials_clear(&c);
    return b;
}

static void assert_bearer(kube_config *cfg, const char *want)
{
    char *b = bearer_of(cfg);
    if (!want)
        assert_null(b);
    else
        assert_string_equal(b, want);
    free(b);
}

static void assert_pem_is(const kube_pem *pem, const char *fixture_rel)
{
    size_t len = 0;
    char *want = fixture_read(fixture_rel, &len);
    assert_non_null(want);
    assert_int_equal(pem->len, len);
    assert_non_null(pem->data);
    assert_memory_equal(pem->data, want, len);
    assert_int_equal(pem->data[len], '\0');
    free(want);
}

static int plugin_runs(env *e)
{
    FILE *f = fopen(path_at(e->dir, "counter"), "r");
    int n = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%d", &n) != 1)
        n = -1;
    fclose(f);
    return n;
}

/* ---- auth shapes and contexts ----------------------------------------- */

static void test_static_token_and_current_context(void **state)
{
    (void)state;
    kube_config *cfg = load_fixture("kubeconfig/token.yaml", NULL);
    assert_string_equal(cfg->source, fixture_path("kubeconfig/token.yaml"));
    assert_string_equal(cfg->context, "dev");
    assert_string_equal(cfg->server, "https://dev.example:6443"); /* trailing slash dropped */
    assert_string_equal(cfg->namespace, "team-a");
    assert_null(cfg->tls_server_name);
    assert_false(cfg->insecure_skip_tls_verify);
    assert_int_equal(cfg->ca.len, 0);
    assert_null(cfg->exec);

    kube_credentials c;
    assert_int_equal(kube_config_credentials(&c, cfg), 0);
    assert_string_equal(c.bearer, "alice-static-token");
    assert_int_equal(c.cert.len, 0);
    assert_int_equal(c.key.len, 0);
    kube_credentials_clear(&c);
    assert_null(c.bearer);
    kube_config_free(cfg);
}

static void test_explicit_context_and_token_file(void **state)
{
    (void)state;
    kube_config *cfg = load_fixture("kubeconfig/token.yaml", "prod");
    assert_string_equal(cfg->context, "prod");
    assert_string_equal(cfg->server, "https://prod.example:443"); /* no scheme: https */
    assert_null(cfg->namespace);
    assert_string_equal(cfg->token_file, fixture_path("kubeconfig/tokens/static-token"));
    assert_bearer(cfg, "file-token-1"); /* the trailing newline is not part of the token */
    kube_config_free(cfg);
}

static void test_missing_explicit_context(void **state)
{
    (void)state;
    kube_config *cfg = (kube_config *)0x1;
    assert_int_equal(kube_config_load(&cfg, fixture_path("kubeconfig/token.yaml"), "staging"), MB_EINVAL);
    assert_null(cfg);
    char want[600];
    snprintf(want, sizeof(want), "kubeconfig %s: context \"staging\" not found (contexts: dev, prod)",
             fixture_path("kubeconfig/token.yaml"));
    assert_string_equal(mb_error_last(), want);
}

static void test_cert_and_key_files(void **state)
{
    (void)state;
    kube_config *cfg = load_fixture("kubeconfig/certs-files.yaml", NULL);
    assert_string_equal(cfg->tls_server_name, "api.internal");
    assert_pem_is(&cfg->ca, "kubeconfig/pki/ca.crt");
    assert_pem_is(&cfg->client_cert, "kubeconfig/pki/client.crt");
    assert_pem_is(&cfg->client_key, "kubeconfig/pki/client.key");

    kube_credentials c;
    assert_int_equal(kube_config_credentials(&c, cfg), 0);
    assert_null(c.bearer);
    assert_pem_is(&c.cert, "kubeconfig/pki/client.crt");
    assert_pem_is(&c.key, "kubeconfig/pki/client.key");
    assert_ptr_not_equal(c.key.data, cfg->client_key.data); /* a copy */
    kube_credentials_clear(&c);
    assert_null(c.key.data);
    assert_int_equal(c.key.len, 0);
    kube_config_free(cfg);
}

static void test_cert_and_key_data(void **state)
{
    (void)state;
    kube_config *cfg = load_fixture("kubeconfig/certs-data.yaml", NULL);
    assert_pem_is(&cfg->ca, "kubeconfig/pki/ca.crt");
    assert_pem_is(&cfg->client_cert, "kubeconfig/pki/client.crt");
    assert_pem_is(&cfg->client_key, "kubeconfig/pki/client.key");
    kube_credentials c;
    assert_int_equal(kube_config_credentials(&c, cfg), 0);
    assert_pem_is(&c.cert, "kubeconfig/pki/client.crt");
    kube_credentials_clear(&c);
    kube_config_free(cfg);
}

static void test_insecure_is_warned(void **state)
{
    env *e = *state;
    kube_config *cfg = load_fixture("kubeconfig/insecure.yaml", NULL);
    assert_true(cfg->insecure_skip_tls_verify);
    assert_int_equal(cfg->ca.len, 0);
    assert_bearer(cfg, NULL); /* the context names no user */
    assert_contains(logged(e), "warn");
    assert_contains(logged(e), "clusters[\"lab\"].cluster.insecure-skip-tls-verify is true");
    kube_config_free(cfg);
}

static void test_secure_config_logs_no_warning(void **state)
{
    env *e = *state;
    kube_config *cfg = load_fixture("kubeconfig/certs-files.yaml", NULL);
    assert_string_equal(logged(e), "");
    kube_config_free(cfg);
}

/* ---- bad files -------------------------------------------------------- */

typedef struct {
    const char *file;    /* under kubeconfig/bad */
    const char *context; /* NULL: current-context */
    int code;
    const char *field; /* the part after "kubeconfig <path>: " */
    const char *reason;
} bad_case;

static const bad_case bad_cases[] = {
    {"bad-base64.yaml", NULL, MB_EINVAL, "users[\"admin\"].user.client-key-data: ", "not valid base64"},
    {"missing-server.yaml", NULL, MB_EINVAL,
     "clusters[\"c\"].cluster.server: ", "missing; set it to the API server's URL"},
    {"missing-context.yaml", NULL, MB_EINVAL, "context \"dev\" not found ", "(contexts: a, b)"},
    {"missing-cluster-ref.yaml", NULL, MB_EINVAL,
     "contexts[\"x\"].context.cluster: ", "cluster \"nope\" not found (clusters: c)"},
    {"missing-user-ref.yaml", NULL, MB_EINVAL, "contexts[\"x\"].context.user: ", "user \"ghost\" not found (users: u)"},
    {"missing-key-file.yaml", NULL, MB_ENOTFOUND, "users[\"u\"].user.client-key: cannot read ",
     "nope.key: No such file or directory"},
    {"cert-without-key.yaml", NULL, MB_EINVAL,
     "users[\"u\"].user: ", "client-certificate is set but client-key is not"},
    {"key-mismatch.yaml", NULL, MB_EINVAL, "users[\"u\"].user: ", "do not belong together"},
    {"key-not-pem.yaml", NULL, MB_EINVAL, "users[\"u\"].user.client-key: ", "not a PEM private key"},
    {"bad-ca.yaml", NULL, MB_EINVAL,
     "clusters[\"c\"].cluster.certificate-authority-data: ", "contains no PEM certificate"},
    {"not-a-list.yaml", NULL, MB_EINVAL, "clusters: ", "not a list"},
    {"not-a-mapping.yaml", NULL, MB_EINVAL, "", "not a mapping of clusters, users and contexts"},
    {"syntax.yaml", NULL, MB_EINVAL,
     "line 11, column 4: ", "did not find expected key (while parsing a block mapping at line 8, column 3)"},
    {"insecure-with-ca.yaml", NULL, MB_EINVAL,
     "clusters[\"c\"].cluster.insecure-skip-tls-verify: ", "cannot be combined"},
    {"bool-string.yaml", NULL, MB_EINVAL, "clusters[\"c\"].cluster.insecure-skip-tls-verify: ", "not true or false"},
    {"server-scheme.yaml", NULL, MB_EINVAL,
     "clusters[\"c\"].cluster.server: ", "\"ftp://c.example\" is not an http or https URL"},
    {"token-number.yaml", NULL, MB_EINVAL, "users[\"u\"].user.token: ", "not a string (quote the value)"},
    {"exec-no-command.yaml", NULL, MB_EINVAL, "users[\"u\"].user.exec.command: ", "missing"},
    {"exec-bad-api.yaml", NULL, MB_EINVAL, "users[\"u\"].user.exec.apiVersion: ", "v1alpha1\" is not supported"},
    {"exec-and-token.yaml", NULL, MB_EINVAL, "users[\"u\"].user.exec: ", "cannot be combined with token"},
    {"exec-always.yaml", NULL, MB_EINVAL, "users[\"u\"].user.exec.interactiveMode: ", "needs a terminal"},
    {"exec-env-no-value.yaml", NULL, MB_EINVAL, "users[\"u\"].user.exec.env[0]: ", "value: missing"},
    {"auth-provider.yaml", NULL, MB_EINVAL, "users[\"u\"].user.auth-provider: ", "use an exec credential plugin"},
    {"missing-name.yaml", NULL, MB_EINVAL, "clusters[1].name: ", "missing"},
    {"no-current-context.yaml", NULL, MB_EINVAL, "current-context is not set ", "(contexts: a)"},
    {"token-file-empty.yaml", NULL, MB_EINVAL, "users[\"u\"].user.tokenFile: ", "the token is empty"},
    {"token-file-missing.yaml", NULL, MB_ENOTFOUND,
     "users[\"u\"].user.tokenFile: ", "cannot read /nonexistent/membrane/token: No such file or directory"},
};

static void test_bad_files_name_file_and_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case *b = &bad_cases[i];
        char rel[128], prefix[700];
        kube_config *cfg = (kube_config *)0x1;
        snprintf(rel, sizeof(rel), "kubeconfig/bad/%s", b->file);
        snprintf(prefix, sizeof(prefix), "kubeconfig %s: %s", fixture_path(rel), b->field);
        int err = kube_config_load(&cfg, fixture_path(rel), b->context);
        if (err != b->code)
            fail_msg("%s: got %d (%s), want %d", b->file, err, mb_error_last(), b->code);
        assert_null(cfg);
        if (strncmp(mb_error_last(), prefix, strlen(prefix)) != 0)
            fail_msg("%s: \"%s\" does not start with \"%s\"", b->file, mb_error_last(), prefix);
        assert_contains(mb_error_last(), b->reason);
    }
}

static void test_missing_kubeconfig_file(void **state)
{
    env *e = *state;
    kube_config *cfg = NULL;
    assert_int_equal(kube_config_load(&cfg, path_at(e->dir, "nope.yaml"), NULL), MB_ENOTFOUND);
    assert_null(cfg);
    assert_contains(mb_error_last(), "kubeconfig ");
    assert_contains(mb_error_last(), "nope.yaml: cannot read ");
    assert_contains(mb_error_last(), "No such file or directory");
}

/* ---- merge, precedence, relative paths -------------------------------- */

static void test_kubeconfig_merge(void **state)
{
    env *e = *state;
    char list[2048];
    const char *a = fixture_path("kubeconfig/merge/a.yaml");
    char a_copy[512], b[512], c[512];
    snprintf(a_copy, sizeof(a_copy), "%s", a);
    snprintf(b, sizeof(b), "%s", fixture_path("kubeconfig/merge/sub/b.yaml"));
    snprintf(c, sizeof(c), "%s", fixture_path("kubeconfig/merge/c.yaml"));
    /* a missing file in the list is skipped; an empty entry too */
    snprintf(list, sizeof(list), "%s:%s::%s:%s", a_copy, path_at(e->dir, "missing.yaml"), b, c);
    setenv("KUBECONFIG", list, 1);

    /* current-context from the first file that sets it (b), cluster "shared" from the first (a) */
    kube_config *cfg = load_ok(NULL, NULL);
    char source[1600];
    snprintf(source, sizeof(source), "%s:%s:%s", a_copy, b, c);
    assert_string_equal(cfg->source, source);
    assert_string_equal(cfg->context, "ctx-b");
    assert_string_equal(cfg->server, "https://a.example");
    assert_bearer(cfg, "b-file-token"); /* ub's tokenFile is relative to merge/sub */
    kube_config_free(cfg);

    /* ctx-a is defined by a and b: a wins, and so does a's user "ua" */
    cfg = load_ok(NULL, "ctx-a");
    assert_string_equal(cfg->server, "https://a.example");
    assert_bearer(cfg, "ua-token");
    kube_config_free(cfg);

    /* a context from c referring to a cluster from b and a user from a */
    cfg = load_ok(NULL, "ctx-c");
    assert_string_equal(cfg->server, "https://only-b.example");
    assert_string_equal(cfg->namespace, "from-c");
    assert_bearer(cfg, "ua-token");
    kube_config_free(cfg);

    /* the not-found message lists each context once */
    assert_int_equal(kube_config_load(&cfg, NULL, "zzz"), MB_EINVAL);
    assert_contains(mb_error_last(), "(contexts: ctx-a, ctx-b, ctx-c)");
}

static void test_kubeconfig_all_missing(void **state)
{
    env *e = *state;
    kube_config *cfg = NULL;
    char list[600];
    snprintf(list, sizeof(list), "%s:%s", path_at(e->dir, "one"), path_at(e->dir, "two"));
    setenv("KUBECONFIG", list, 1);
    assert_int_equal(kube_config_load(&cfg, NULL, NULL), MB_ENOTFOUND);
    assert_contains(mb_error_last(), "$KUBECONFIG (");
    assert_contains(mb_error_last(), "names no existing kubeconfig file");
}

static const char *simple_kubeconfig(char *buf, size_t len, const char *server)
{
    snprintf(buf, len,
             "apiVersion: v1\nkind: Config\ncurrent-context: only\n"
             "clusters:\n- name: c\n  cluster: {server: \"%s\"}\n"
             "contexts:\n- name: only\n  context: {cluster: c}\n",
             server);
    return buf;
}

static void write_incluster(const char *root, const char *token)
{
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/token", token);
    char *ca = fixture_read("kubeconfig/pki/ca.crt", NULL);
    assert_non_null(ca);
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/ca.crt", ca);
    free(ca);
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/namespace", "membrane-system\n");
}

static void test_precedence(void **state)
{
    env *e = *state;
    char buf[512], root[300], home[300];
    kube_config *cfg = NULL;
    kube_config_opts opts = {NULL, NULL, NULL};

    write_at(e->dir, "explicit.yaml", simple_kubeconfig(buf, sizeof(buf), "https://explicit"));
    write_at(e->dir, "env.yaml", simple_kubeconfig(buf, sizeof(buf), "https://env"));
    write_at(e->dir, "home/.kube/config", simple_kubeconfig(buf, sizeof(buf), "https://home"));
    snprintf(root, sizeof(root), "%s/root", e->dir);
    snprintf(home, sizeof(home), "%s/home", e->dir);
    write_incluster(root, "sa-token\n");
    opts.incluster_root = root;
    setenv("KUBECONFIG", path_at(e->dir, "env.yaml"), 1);
    setenv("HOME", home, 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);

    opts.path = path_at(e->dir, "explicit.yaml");
    assert_int_equal(kube_config_load_opts(&cfg, &opts), 0);
    assert_string_equal(cfg->server, "https://explicit");
    kube_config_free(cfg);

    opts.path = NULL;
    assert_int_equal(kube_config_load_opts(&cfg, &opts), 0);
    assert_string_equal(cfg->server, "https://env");
    kube_config_free(cfg);

    unsetenv("KUBECONFIG");
    assert_int_equal(kube_config_load_opts(&cfg, &opts), 0);
    assert_string_equal(cfg->server, "https://home");
    assert_string_equal(cfg->source, path_at(home, ".kube/config"));
    kube_config_free(cfg);

    setenv("HOME", e->dir, 1); /* no .kube there */
    assert_int_equal(kube_config_load_opts(&cfg, &opts), 0);
    assert_string_equal(cfg->server, "https://10.96.0.1:443");
    assert_string_equal(cfg->source, "in-cluster");
    assert_null(cfg->context);
    assert_bearer(cfg, "sa-token");
    kube_config_free(cfg);

    /* a context cannot be chosen in-cluster */
    opts.context = "dev";
    assert_int_equal(kube_config_load_opts(&cfg, &opts), MB_EINVAL);
    assert_contains(mb_error_last(), "context \"dev\" was asked for");
    opts.context = NULL;

    /* nothing at all */
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kube_config_load_opts(&cfg, &opts), MB_ENOTFOUND);
    assert_null(cfg);
    assert_contains(mb_error_last(), "no Kubernetes configuration found");
    assert_contains(mb_error_last(), "/.kube/config does not exist");
}

static void test_relative_kubeconfig_path(void **state)
{
    (void)state;
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fixture_path("kubeconfig")), 0);
    kube_config *cfg = NULL;
    int err = kube_config_load(&cfg, "certs-files.yaml", NULL);
    assert_int_equal(chdir(cwd), 0);
    if (err < 0)
        fail_msg("%s", mb_error_last());
    assert_pem_is(&cfg->ca, "kubeconfig/pki/ca.crt");
    kube_config_free(cfg);

    /* a relative path with a directory part, from one level up */
    assert_int_equal(chdir(fixture_path("")), 0);
    err = kube_config_load(&cfg, "kubeconfig/token.yaml", "prod");
    assert_int_equal(chdir(cwd), 0);
    if (err < 0)
        fail_msg("%s", mb_error_last());
    assert_string_equal(cfg->token_file, "kubeconfig/tokens/static-token");
    kube_config_free(cfg);
}

/* ---- token rotation --------------------------------------------------- */

static void bump_mtime(const char *path, long seconds)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    times[1].tv_sec += seconds;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static struct timespec mtime_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mtim;
}

static void set_mtime(const char *path, struct timespec when)
{
    struct timespec times[2] = {when, when};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void test_token_file_rotation(void **state)
{
    env *e = *state;
    kube_config *cfg = NULL;
    write_at(e->dir, "kc/config",
             "current-context: x\n"
             "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
             "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
             "users: [{name: u, user: {tokenFile: secrets/token, token: ignored-static}}]\n");
    write_at(e->dir, "kc/secrets/token", "one\n");
    cfg = load_ok(path_at(e->dir, "kc/config"), NULL);
    assert_bearer(cfg, "one"); /* tokenFile wins over token */
    assert_bearer(cfg, "one");

    /* rewritten in place with another length */
    write_at(e->dir, "kc/secrets/token", "two-longer\n");
    assert_bearer(cfg, "two-longer");

    /* rewritten with the same length: the mtime tells */
    write_at(e->dir, "kc/secrets/token", "three-abcd\n");
    bump_mtime(path_at(e->dir, "kc/secrets/token"), 5);
    assert_bearer(cfg, "three-abcd");

    /* only the size changes (the mtime is pinned to the old one) */
    struct timespec old = mtime_of(path_at(e->dir, "kc/secrets/token"));
    write_at(e->dir, "kc/secrets/token", "size-only-change\n");
    set_mtime(path_at(e->dir, "kc/secrets/token"), old);
    assert_bearer(cfg, "size-only-change");

    /* only the inode changes: replaced by rename, as atomic writers do, same size and mtime */
    old = mtime_of(path_at(e->dir, "kc/secrets/token"));
    write_at(e->dir, "kc/secrets/token.new", "inode-only-chang\n");
    set_mtime(path_at(e->dir, "kc/secrets/token.new"), old);
    assert_int_equal(rename(path_at(e->dir, "kc/secrets/token.new"), path_at(e->dir, "kc/secrets/token")), 0);
    assert_bearer(cfg, "inode-only-chang");

    /* an ordinary rename rotation */
    write_at(e->dir, "kc/secrets/token.new", "four-xyzw\n");
    assert_int_equal(rename(path_at(e->dir, "kc/secrets/token.new"), path_at(e->dir, "kc/secrets/token")), 0);
    assert_bearer(cfg, "four-xyzw");

    /* gone for a moment: the last token stays, with one warning */
    assert_int_equal(unlink(path_at(e->dir, "kc/secrets/token")), 0);
    assert_bearer(cfg, "four-xyzw");
    assert_bearer(cfg, "four-xyzw");
    const char *log = logged(e);
    assert_contains(log, "could not be re-read");
    assert_null(strstr(strstr(log, "could not be re-read") + 1, "could not be re-read"));
    assert_not_contains(log, "four-xyzw");

    write_at(e->dir, "kc/secrets/token", "five\n");
    assert_bearer(cfg, "five");
    kube_config_free(cfg);
}

typedef struct {
    kube_config *cfg;
    int bad;
} thread_arg;

static void *hammer(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 300; i++) {
        kube_credentials c;
        if (kube_config_credentials(&c, a->cfg) < 0 || !c.bearer ||
            (strcmp(c.bearer, "token-aaaa") != 0 && strcmp(c.bearer, "token-bbbbbbbb") != 0))
            a->bad++;
        kube_credentials_clear(&c);
    }
    return NULL;
}

static void test_credentials_from_many_threads(void **state)
{
    env *e = *state;
    pthread_t t[4];
    thread_arg args[4];
    write_at(e->dir, "config",
             "current-context: x\n"
             "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
             "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
             "users: [{name: u, user: {tokenFile: token}}]\n");
    write_at(e->dir, "token", "token-aaaa");
    kube_config *cfg = load_ok(path_at(e->dir, "config"), NULL);
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){cfg, 0};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        write_at(e->dir, "token.new", i % 2 ? "token-aaaa" : "token-bbbbbbbb");
        rename(path_at(e->dir, "token.new"), path_at(e->dir, "token"));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    assert_bearer(cfg, "token-aaaa");
    kube_config_free(cfg);
}

/* ---- exec plugins ----------------------------------------------------- */

static kube_config *load_exec(const char *context)
{
    return load_fixture("kubeconfig/exec.yaml", context);
}

static void test_exec_token_cached_without_expiry(void **state)
{
    env *e = *state;
    kube_config *cfg = load_exec(NULL); /* current-context: token */
    assert_non_null(cfg->exec);
    assert_string_equal(cfg->exec->command, fixture_path("kubeconfig/./plugins/exec-plugin.sh"));
    assert_int_equal(plugin_runs(e), 0); /* run lazily, on the first request */
    assert_bearer(cfg, "exec-token-1");
    assert_bearer(cfg, "exec-token-1");
    assert_int_equal(plugin_runs(e), 1);
    /* after a 401 the HTTP layer invalidates: the plugin runs again */
    kube_config_credentials_invalidate(cfg);
    assert_bearer(cfg, "exec-token-2");
    kube_config_free(cfg);
}

static void test_exec_expired_credential_is_refreshed(void **state)
{
    env *e = *state;
    kube_config *cfg = load_exec("expired");
    assert_bearer(cfg, "exec-token-1");
    assert_bearer(cfg, "exec-token-2");
    assert_int_equal(plugin_runs(e), 2);
    assert_contains(logged(e), "already expired");
    kube_config_free(cfg);
}

static void test_exec_near_expiry_is_refreshed(void **state)
{
    env *e = *state;
    kube_config *cfg = load_exec("near"); /* expires in 10 s: inside the 30 s margin */
    assert_bearer(cfg, "exec-token-1");
    assert_bearer(cfg, "exec-token-2");
    assert_int_equal(plugin_runs(e), 2);
    kube_config_free(cfg);
}

static void test_exec_far_expiry_is_cached(void **state)
{
    env *e = *state;
    kube_config *cfg = load_exec("far"); /* two hours, fraction and offset in the timestamp */
    assert_bearer(cfg, "exec-token-1");
    assert_bearer(cfg, "exec-token-1");
    assert_int_equal(plugin_runs(e), 1);
    assert_true(cfg->exec_expiry > time(NULL) + 3600);
    kube_config_free(cfg);
}

static void test_exec_failed_refresh_keeps_valid_credential(void **state)
{
    env *e = *state;
    kube_config *cfg = load_exec("flaky");
    assert_bearer(cfg, "exec-token-1");
    /* the second run fails, but the credential has not expired yet */
    assert_bearer(cfg, "exec-token-1");
    assert_int_equal(plugin_runs(e), 2);
    assert_contains(logged(e), "exited with code 3: flaky: token service unavailable");
    assert_contains(logged(e), "using the current credential until it expires");
    /* and it is not re-run on every request while it keeps failing */
    assert_bearer(cfg, "exec-token-1");
    assert_int_equal(plugin_runs(e), 2);
    kube_config_free(cfg);
}

static void test_exec_client_certificate(void **state)
{
    (void)state;
    kube_config *cfg = load_exec("cert");
    kube_credentials c;
    assert_int_equal(kube_config_credentials(&c, cfg), 0);
    assert_null(c.bearer);
    assert_pem_is(&c.cert, "kubeconfig/pki/client.crt");
    assert_pem_is(&c.key, "kubeconfig/pki/client.key");
    kube_credentials_clear(&c);
    kube_config_free(cfg);
}

static void test_exec_env_args_and_cluster_info(void **state)
{
    env *e = *state;
    kube_config *cfg = load_exec("env");
    assert_bearer(cfg, "hello-from-args"); /* env from the kubeconfig, args */

    FILE *f = fopen(path_at(e->dir, "counter.info"), "r");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *doc = cJSON_Parse(buf);
    assert_non_null(doc);
    assert_string_equal(json_str(doc, "apiVersion", NULL), "client.authentication.k8s.io/v1");
    assert_string_equal(json_str(doc, "kind", NULL), "ExecCredential");
    assert_true(cJSON_IsFalse(json_get(doc, "spec", "interactive", NULL)));
    assert_string_equal(json_str(doc, "spec", "cluster", "server", NULL), "https://exec.example:6443");
    assert_string_equal(json_str(doc, "spec", "cluster", "tls-server-name", NULL), "exec.internal");
    assert_string_equal(json_str(doc, "spec", "cluster", "config", "audience", NULL), "membrane-test");

    /* certificate-authority-data is the CA, base64 */
    const char *ca64 = json_str(doc, "spec", "cluster", "certificate-authority-data", NULL);
    assert_non_null(ca64);
    size_t want_len = 0;
    char *want = fixture_read("kubeconfig/pki/ca.crt", &want_len);
    unsigned char *decoded = malloc(strlen(ca64));
    int dlen = EVP_DecodeBlock(decoded, (const unsigned char *)ca64, (int)strlen(ca64));
    assert_true(dlen >= (int)want_len); /* DecodeBlock counts padding bytes too */
    assert_memory_equal(decoded, want, want_len);
    free(decoded);
    free(want);
    cJSON_Delete(doc);
    kube_config_free(cfg);

    /* without provideClusterInfo the plugin gets no cluster */
    cfg = load_exec("token");
    assert_null(strstr(cfg->exec->exec_info, "\"cluster\""));
    assert_non_null(strstr(cfg->exec->exec_info, "\"interactive\":false"));
    kube_config_free(cfg);
}

static void test_exec_v1beta1_and_path_lookup(void **state)
{
    (void)state;
    kube_config *cfg = load_exec("v1beta1");
    assert_bearer(cfg, "beta-token-1");
    kube_config_free(cfg);
    cfg = load_exec("inpath"); /* "sh", found in PATH */
    assert_string_equal(cfg->exec->command, "sh");
    assert_bearer(cfg, "from-path");
    kube_config_free(cfg);
}

typedef struct {
    const char *context;
    int code;
    const char *reason;
} exec_case;

static void test_exec_failures(void **state)
{
    env *e = *state;
    static const exec_case cases[] = {
        {"fail", MB_ERROR, "exited with code 1: error: you must be logged in to the server (run 'login')"},
        {"garbage", MB_EJSON,
         "printed something that is not an ExecCredential: its output is not a JSON object (17 bytes)"},
        {"wrongkind", MB_EJSON, "not an ExecCredential: kind is \"Status\""},
        {"wrongapi", MB_EJSON,
         "apiVersion is \"client.authentication.k8s.io/v1beta1\" but the kubeconfig asks for "
         "client.authentication.k8s.io/v1"},
        {"empty", MB_EJSON, "status has neither a token nor clientCertificateData and clientKeyData"},
        {"badtime", MB_EJSON, "status.expirationTimestamp \"tomorrow\" is not an RFC 3339 time"},
        /* RFC 3339 as util/timefmt reads it everywhere: a day its month does not have is no time */
        {"baddate", MB_EJSON, "status.expirationTimestamp \"2030-02-30T00:00:00Z\" is not an RFC 3339 time"},
        {"mismatch", MB_EJSON, "do not belong together"},
        {"missing", MB_ERROR,
         "plugin membrane-no-such-credential-plugin could not be started: not found in PATH. "
         "install it with \"apt-get install membrane-no-such-plugin\""},
        {"noexec", MB_ERROR, "pki/ca.crt could not be started: Permission denied"},
        {"exit127", MB_ERROR, "exited with code 127: sh: 1: membrane-gone: not found. reinstall membrane-gone"},
        {"slow", MB_ETIMEOUT, "did not finish within 300 ms and was stopped"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kube_config *cfg = load_exec(cases[i].context);
        kube_credentials c;
        char origin[700];
        cfg->exec->timeout_ms = 300;
        int err = kube_config_credentials(&c, cfg);
        if (err != cases[i].code)
            fail_msg("%s: got %d (%s), want %d", cases[i].context, err, mb_error_last(), cases[i].code);
        assert_null(c.bearer);
        assert_int_equal(c.cert.len, 0);
        snprintf(origin, sizeof(origin),
                 "kubeconfig %s: users[\"%s\"].user.exec: ", fixture_path("kubeconfig/exec.yaml"), cases[i].context);
        if (strncmp(mb_error_last(), origin, strlen(origin)) != 0)
            fail_msg("%s: \"%s\" does not start with \"%s\"", cases[i].context, mb_error_last(), origin);
        assert_contains(mb_error_last(), cases[i].reason);
        assert_not_contains(mb_error_last(), "second line");
        /* no credential was cached: the next call runs the plugin again */
        int before = plugin_runs(e);
        assert_int_equal(kube_config_credentials(&c, cfg), cases[i].code);
        bool script = strstr(cfg->exec->command, "exec-plugin.sh") != NULL; /* the one that counts its runs */
        assert_int_equal(before, script ? 1 : 0);
        if (script)
            assert_int_equal(plugin_runs(e), before + 1);
        kube_config_free(cfg);
        unlink(path_at(e->dir, "counter"));
    }
}

static void test_secrets_never_logged(void **state)
{
    env *e = *state;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_DEBUG, e->log_file);
    kube_config *cfg = load_fixture("kubeconfig/token.yaml", NULL);
    assert_bearer(cfg, "alice-static-token");
    kube_config_free(cfg);
    cfg = load_exec("expired");
    assert_bearer(cfg, "exec-token-1");
    assert_bearer(cfg, "exec-token-2");
    kube_config_free(cfg);
    cfg = load_exec("cert");
    kube_credentials c;
    assert_int_equal(kube_config_credentials(&c, cfg), 0);
    kube_credentials_clear(&c);
    kube_config_free(cfg);
    const char *log = logged(e);
    assert_contains(log, "debug"); /* something was logged at all */
    assert_not_contains(log, "alice-static-token");
    assert_not_contains(log, "exec-token");
    assert_not_contains(log, "PRIVATE KEY");
}

/* ---- in-cluster ------------------------------------------------------- */

static void test_incluster(void **state)
{
    env *e = *state;
    char root[300];
    kube_config *cfg = NULL;
    snprintf(root, sizeof(root), "%s/root", e->dir);
    write_incluster(root, "sa-token-1\n");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kube_config_load_incluster(&cfg, root), 0);
    assert_string_equal(cfg->source, "in-cluster");
    assert_string_equal(cfg->server, "https://10.96.0.1:443");
    assert_string_equal(cfg->namespace, "membrane-system");
    assert_pem_is(&cfg->ca, "kubeconfig/pki/ca.crt");
    assert_false(cfg->insecure_skip_tls_verify);
    assert_bearer(cfg, "sa-token-1");
    kube_config_free(cfg);
}

/* The kubelet's layout: token -> ..data/token, ..data -> ..<timestamp>; rotation swaps ..data. */
static void test_incluster_token_rotation(void **state)
{
    env *e = *state;
    char root[300], sa[400], p[600], q[600];
    kube_config *cfg = NULL;
    snprintf(root, sizeof(root), "%s/root", e->dir);
    snprintf(sa, sizeof(sa), "%s/var/run/secrets/kubernetes.io/serviceaccount", root);
    write_at(sa, "..2024_01/token", "sa-token-1");
    write_at(sa, "..2024_01/namespace", "ns-a");
    snprintf(p, sizeof(p), "%s/..data", sa);
    assert_int_equal(symlink("..2024_01", p), 0);
    snprintf(p, sizeof(p), "%s/token", sa);
    assert_int_equal(symlink("..data/token", p), 0);
    snprintf(p, sizeof(p), "%s/namespace", sa);
    assert_int_equal(symlink("..data/namespace", p), 0);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);

    assert_int_equal(kube_config_load_incluster(&cfg, root), 0);
    assert_int_equal(cfg->ca.len, 0); /* no ca.crt: system trust, with a warning */
    assert_contains(logged(e), "ca.crt does not exist");
    assert_string_equal(cfg->namespace, "ns-a");
    assert_bearer(cfg, "sa-token-1");

    write_at(sa, "..2024_02/token", "sa-token-2");
    snprintf(p, sizeof(p), "%s/..data_tmp", sa);
    snprintf(q, sizeof(q), "%s/..data", sa);
    assert_int_equal(symlink("..2024_02", p), 0);
    assert_int_equal(rename(p, q), 0);
    assert_bearer(cfg, "sa-token-2");
    assert_bearer(cfg, "sa-token-2");
    kube_config_free(cfg);
}

static void test_incluster_ipv6_and_errors(void **state)
{
    env *e = *state;
    char root[300];
    kube_config *cfg = NULL;
    snprintf(root, sizeof(root), "%s/root", e->dir);

    assert_int_equal(kube_config_load_incluster(&cfg, root), MB_ENOTFOUND);
    assert_contains(mb_error_last(), "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set");

    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "https", 1);
    assert_int_equal(kube_config_load_incluster(&cfg, root), MB_EINVAL);
    assert_contains(mb_error_last(), "KUBERNETES_SERVICE_PORT \"https\" is not a port number");

    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kube_config_load_incluster(&cfg, root), MB_ENOTFOUND);
    assert_null(cfg);
    assert_contains(mb_error_last(), "in-cluster configuration: the service-account token: cannot read ");
    assert_contains(mb_error_last(), "/root/var/run/secrets/kubernetes.io/serviceaccount/token");

    write_incluster(root, "t");
    write_at(root, "var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "garbage\n");
    assert_int_equal(kube_config_load_incluster(&cfg, root), MB_EINVAL);
    assert_contains(mb_error_last(), "serviceaccount/ca.crt: contains no PEM certificate");

    write_incluster(root, "t");
    assert_int_equal(kube_config_load_incluster(&cfg, root), 0);
    assert_string_equal(cfg->server, "https://[fd00:10:96::1]:443");
    kube_config_free(cfg);

    setenv("KUBERNETES_SERVICE_HOST", "[fd00::1]", 1);
    assert_int_equal(kube_config_load_incluster(&cfg, root), 0);
    assert_string_equal(cfg->server, "https://[fd00::1]:443");
    kube_config_free(cfg);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_static_token_and_current_context),
        T(test_explicit_context_and_token_file),
        T(test_missing_explicit_context),
        T(test_cert_and_key_files),
        T(test_cert_and_key_data),
        T(test_insecure_is_warned),
        T(test_secure_config_logs_no_warning),
        T(test_bad_files_name_file_and_field),
        T(test_missing_kubeconfig_file),
        T(test_kubeconfig_merge),
        T(test_kubeconfig_all_missing),
        T(test_precedence),
        T(test_relative_kubeconfig_path),
        T(test_token_file_rotation),
        T(test_credentials_from_many_threads),
        T(test_exec_token_cached_without_expiry),
        T(test_exec_expired_credential_is_refreshed),
        T(test_exec_near_expiry_is_refreshed),
        T(test_exec_far_expiry_is_cached),
        T(test_exec_failed_refresh_keeps_valid_credential),
        T(test_exec_client_certificate),
        T(test_exec_env_args_and_cluster_info),
        T(test_exec_v1beta1_and_path_lookup),
        T(test_exec_failures),
        T(test_secrets_never_logged),
        T(test_incluster),
        T(test_incluster_token_rotation),
        T(test_incluster_ipv6_and_errors),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
