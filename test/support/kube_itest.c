/*
 * Integration-test helpers over the real API server named by $KUBECONFIG.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"
#include "runtime/metrics_families.h"

#include "kube/config.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

kube_client *itest_client(void)
{
    kube_config *cfg = NULL;
    kube_client *c = NULL;
    const char *kc = getenv("KUBECONFIG");
    if (!kc || !*kc) {
        print_message("KUBECONFIG is not set: skipping (hack/test.sh sets it)\n");
        return NULL;
    }
    if (kube_config_load(&cfg, NULL, NULL) < 0)
        fail_msg("cannot load %s: %s", kc, mb_error_last());
    /* counted in membrane_api_requests_total, as the operator's own client is */
    kube_client_opts o = {.on_answer = metrics_api_request_inc};
    if (kube_client_new(&c, cfg, &o) < 0)
        fail_msg("cannot create a client: %s", mb_error_last());
    return c;
}

char *itest_namespace_new(kube_client *c, const char *prefix)
{
    static unsigned counter;
    char *name = NULL;
    cJSON *ns;
    unsigned r = (unsigned)time(NULL) ^ ((unsigned)getpid() << 8) ^ (++counter * 2654435761u);
    if (asprintf(&name, "%s-%08x", prefix, r) < 0)
        fail_msg("out of memory");
    ns = itest_json("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\","
                    "\"labels\":{\"membrane.test/integration\":\"true\"}}}",
                    name);
    if (kube_create(NULL, c, &KUBE_NAMESPACES, NULL, ns) < 0)
        fail_msg("cannot create namespace %s: %s", name, mb_error_last());
    cJSON_Delete(ns);
    return name;
}

void itest_namespace_delete(kube_client *c, char *ns)
{
    if (!ns)
        return;
    if (kube_delete(c, &KUBE_NAMESPACES, NULL, ns, NULL) < 0)
        print_message("cannot delete namespace %s: %s\n", ns, mb_error_last());
    free(ns);
}

void itest_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

bool itest_eventually(bool (*cond)(void *ctx), void *ctx, long timeout_ms)
{
    int64_t start = mb_monotonic_ns();
    for (;;) {
        if (cond(ctx))
            return true;
        if (mb_elapsed_ms(start) > (double)timeout_ms)
            return cond(ctx);
        itest_sleep_ms(50);
    }
}

cJSON *itest_json(const char *fmt, ...)
{
    char *s = NULL;
    cJSON *j;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        fail_msg("out of memory");
    if (!(j = cJSON_Parse(s)))
        fail_msg("test JSON does not parse: %s", s);
    free(s);
    return j;
}

int itest_cluster(const char *args)
{
    char *cmd = NULL;
    int st;
    if (asprintf(&cmd, "cd '%s' && bash hack/cluster.sh %s", SOURCE_DIR, args) < 0)
        fail_msg("out of memory");
    st = system(cmd);
    free(cmd);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts items, joins them with spaces into a fresh string and frees them. */
static char *join_sorted(char **items, size_t n)
{
    size_t len = 1;
    char *out;
    qsort(items, n, sizeof(*items), str_cmp);
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, items[i]);
        free(items[i]);
    }
    free(items);
    return out;
}

char *itest_server_versions(kube_client *c, const kube_resource *r, const char *ns, const char *label_selector)
{
    cJSON *list = NULL;
    const cJSON *item;
    kube_list_opts lo = {.label_selector = label_selector};
    char **items;
    size_t n = 0;
    if (kube_list(&list, c, r, ns, &lo) < 0) {
        print_message("cannot list %s: %s\n", r->resource, mb_error_last());
        return NULL;
    }
    items = calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")) + 1, sizeof(*items));
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(list, "items")) {
        char *key = NULL;
        if (informer_key(&key, item) < 0)
            fail_msg("a listed object has no key: %s", mb_error_last());
        if (asprintf(&items[n], "%s@%s", key, json_str(item, "metadata", "resourceVersion", NULL)) < 0)
            fail_msg("out of memory");
        n++;
        free(key);
    }
    cJSON_Delete(list);
    return join_sorted(items, n);
}

char *itest_objs_versions(informer_objs *l)
{
    char **items = calloc(l->len + 1, sizeof(*items));
    size_t n = 0;
    for (size_t i = 0; i < l->len; i++, n++)
        if (asprintf(&items[n], "%s@%s", informer_obj_key(l->items[i]), informer_obj_resource_version(l->items[i])) < 0)
            fail_msg("out of memory");
    informer_objs_free(l);
    return join_sorted(items, n);
}

int itest_etcd_delete(const char *key)
{
    const char *dir = getenv("MEMBRANE_CLUSTER_DIR");
    char path[4096], port[32] = "", *cmd = NULL;
    FILE *fp;
    int st;
    if (!dir)
        return -1;
    snprintf(path, sizeof(path), "%s/run/etcd.port", dir);
    if (!(fp = fopen(path, "r")))
        return -1;
    if (!fgets(port, sizeof(port), fp))
        port[0] = '\0';
    fclose(fp);
    port[strcspn(port, "\r\n")] = '\0';
    /* The gateway wants the key in base64 and answers {..., "deleted":"1"}. */
    if (asprintf(&cmd,
                 "k=$(printf %%s '%s' | base64 -w0) && "
                 "curl -sSf -X POST http://127.0.0.1:%s/v3/kv/deleterange -d \"{\\\"key\\\":\\\"$k\\\"}\" "
                 "| grep -q '\"deleted\":\"1\"'",
                 key, port) < 0)
        return -1;
    st = system(cmd);
    free(cmd);
    return st == 0 ? 0 : -1;
}

int itest_fixture_setup(void **state, const char *prefix)
{
    kube_client *c = itest_client();
    itest_fixture *f;
    *state = NULL;
    if (!c)
        return 0;
    if (!(f = calloc(1, sizeof(*f)))) {
        kube_client_free(c);
        return -1;
    }
    f->c = c;
    f->ns = itest_namespace_new(c, prefix);
    *state = f;
    return 0;
}

int itest_fixture_teardown(void **state)
{
    itest_fixture *f = *state;
    if (f) {
        itest_namespace_delete(f->c, f->ns);
        kube_client_free(f->c);
        free(f);
    }
    return 0;
}

itest_fixture *itest_need(void **state)
{
    if (!*state)
        skip();
    return *state;
}
