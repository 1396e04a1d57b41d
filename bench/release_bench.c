/*
 * Benchmark of the GovernedAPIRelease path, against a running operator and
 * the local control plane (hack/bench.sh sets both up): N times, change a
 * release's spec.image.digest and time until a watch on its Deployment sees
 * the container image carry that digest, which is: the spec write, its watch
 * event reaching the operator, the reconcile (gates, status write with the
 * rollback target), and the Deployment patch coming back through the watch.
 * Each change waits for the one before it to settle (Succeeded), so that it
 * meets an idle release, as a change from Git does. The operator logs its own
 * share (the spec change reaching it -> the patch sent), which hack/bench.sh
 * reports beside these. It prints p50, p90, p99 and max; it asserts nothing.
 *
 *   release_bench NAMESPACE RELEASE DEPLOYMENT CHANGES
 */
#include "api/resources.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/watch.h"
#include "util/error.h"
#include "util/json.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t seen;
    char want[80];
    bool matched;
    char rv[64]; /* the last resourceVersion seen: a new watch resumes from it */
    atomic_bool stop;
    kube_client *client;
    const char *ns, *deployment;
} watcher;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int on_event(void *ctx, kube_watch_type type, cJSON *obj)
{
    watcher *w = ctx;
    const cJSON *ct;
    const char *rv = json_str(obj, "metadata", "resourceVersion", NULL);
    if (rv)
        snprintf(w->rv, sizeof(w->rv), "%s", rv);
    if (type == KUBE_WATCH_ADDED || type == KUBE_WATCH_MODIFIED) {
        cJSON_ArrayForEach(ct, json_get(obj, "spec", "template", "spec", "containers", NULL)) {
            const char *image = json_str(ct, "image", NULL);
            pthread_mutex_lock(&w->lock);
            if (image && w->want[0] && strstr(image, w->want)) {
                w->matched = true;
                pthread_cond_signal(&w->seen);
            }
            pthread_mutex_unlock(&w->lock);
        }
    }
    cJSON_Delete(obj);
    return atomic_load(&w->stop) ? 1 : 0;
}

static void *watch_loop(void *arg)
{
    watcher *w = arg;
    char field[300];
    snprintf(field, sizeof(field), "metadata.name=%s", w->deployment);
    while (!atomic_load(&w->stop)) {
        kube_watch_opts o = {.field_selector = field, .stop = &w->stop, .timeout_seconds = 300,
                             .resource_version = w->rv[0] ? w->rv : NULL};
        int err = kube_watch(w->client, &KUBE_DEPLOYMENTS, w->ns, &o, on_event, w);
        if (err < 0 && err != MB_ESTOPPED)
            fprintf(stderr, "release_bench: the watch ended (%s); resuming\n", mb_error_last());
        if (err == MB_EGONE)
            w->rv[0] = '\0';
    }
    return NULL;
}

/* Waits (up to 10 s) until the release reports Succeeded for its current generation. */
static void wait_settled(kube_client *client, const char *ns, const char *name)
{
    for (int i = 0; i < 1000; i++) {
        cJSON *r = NULL;
        bool done = false;
        if (kube_get(&r, client, &API_GOVERNEDAPIRELEASES, ns, name) == 0) {
            const char *phase = json_str(r, "status", "phase", NULL);
            done = phase && strcmp(phase, "Succeeded") == 0 &&
                   json_int(-1, r, "status", "observedGeneration", NULL) == json_int(-2, r, "metadata", "generation", NULL);
        }
        cJSON_Delete(r);
        if (done)
            return;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    kube_config *cfg = NULL;
    watcher w = {.lock = PTHREAD_MUTEX_INITIALIZER, .seen = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    int n;

    if (argc != 5 || (n = atoi(argv[4])) < 1) {
        fprintf(stderr, "usage: release_bench NAMESPACE RELEASE DEPLOYMENT CHANGES\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (kube_config_load(&cfg, NULL, NULL) < 0 || kube_client_new(&w.client, cfg, NULL) < 0) {
        fprintf(stderr, "release_bench: %s\n", mb_error_last());
        return 1;
    }
    w.ns = argv[1];
    w.deployment = argv[3];
    pthread_create(&th, NULL, watch_loop, &w);

    double *lat = calloc((size_t)n, sizeof(double));
    int done = 0;
    for (int i = 0; i < n; i++) {
        unsigned char hex[65];
        char patch[200];
        unsigned char raw[32];
        FILE *ur = fopen("/dev/urandom", "rb");
        if (!ur || fread(raw, 1, sizeof(raw), ur) != sizeof(raw)) {
            fprintf(stderr, "release_bench: cannot read /dev/urandom\n");
            return 1;
        }
        fclose(ur);
        for (int k = 0; k < 64; k++)
            hex[k] = "0123456789abcdef"[(raw[k / 2] >> (k % 2 ? 0 : 4)) & 15];
        hex[64] = '\0';
        if (hex[0] == 'd' || hex[0] == 'b')
            hex[0] = '1'; /* never a kwok marker digest */
        pthread_mutex_lock(&w.lock);
        snprintf(w.want, sizeof(w.want), "sha256:%s", hex);
        w.matched = false;
        pthread_mutex_unlock(&w.lock);
        snprintf(patch, sizeof(patch), "{\"spec\":{\"image\":{\"digest\":\"sha256:%s\"}}}", hex);
        double t0 = now_ms();
        if (kube_patch(NULL, w.client, &API_GOVERNEDAPIRELEASES, argv[1], argv[2], NULL, KUBE_PATCH_MERGE, patch) < 0) {
            fprintf(stderr, "release_bench: %s\n", mb_error_last());
            break;
        }
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        pthread_mutex_lock(&w.lock);
        while (!w.matched && pthread_cond_timedwait(&w.seen, &w.lock, &deadline) == 0)
            ;
        bool ok = w.matched;
        pthread_mutex_unlock(&w.lock);
        if (!ok) {
            cJSON *d = NULL;
            const char *image = NULL;
            if (kube_get(&d, w.client, &KUBE_DEPLOYMENTS, argv[1], argv[3]) == 0)
                image = json_str(cJSON_GetArrayItem(json_get(d, "spec", "template", "spec", "containers", NULL), 0),
                                 "image", NULL);
            fprintf(stderr, "release_bench: change %d (%s) not seen through the watch within 10 s; the Deployment %s it\n",
                    i, w.want, image && strstr(image, w.want) ? "has" : "does not have");
            cJSON_Delete(d);
            continue;
        }
        lat[done++] = now_ms() - t0;
        wait_settled(w.client, argv[1], argv[2]);
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    if (done) {
        qsort(lat, (size_t)done, sizeof(double), cmp);
        printf("spec change -> Deployment patch seen, %d changes: p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
               done, lat[done / 2], lat[done * 9 / 10], lat[(done * 99) / 100 < done ? (done * 99) / 100 : done - 1],
               lat[done - 1]);
    }
    free(lat);
    kube_client_free(w.client);
    curl_global_cleanup();
    return done == n ? 0 : 1;
}
