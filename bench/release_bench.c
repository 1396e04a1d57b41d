/*
 * Benchmark of the GovernedAPIRelease path, against a running operator and
 * the local control plane (hack/bench.sh sets both up): N times, change a
 * release's spec.image.digest and time until a watch on its Deployment sees
 * the container image carry that digest, which is: the spec write, its watch
 * event reaching the operator, the reconcile (gates, status write with the
 * rollback target), and the Deployment patch coming back through the watch.
 * Each change waits for the one before it to settle (Succeeded, seen through
 * a watch on the release, so that the bench adds no polling load), then
 * SETTLE_MS more, so that it meets an idle operator, as a change from Git
 * does. The operator logs its own share (the spec change reaching it -> the
 * patch sent), which hack/bench.sh reports beside these. It prints p50, p90,
 * p99 and max; it asserts nothing.
 *
 *   release_bench NAMESPACE RELEASE DEPLOYMENT CHANGES
 */
#include "api/resources.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/watch.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SETTLE_MS 200 /* after a change has Succeeded, before the next */

/* One watch on one object: its handler decides what a matching event is. */
typedef struct watcher {
    pthread_mutex_t lock;
    pthread_cond_t seen;
    bool matched;
    bool (*match)(struct watcher *w, const cJSON *obj); /* called under lock */
    char want[80];                                      /* the deployment watch: the digest the image must carry */
    long long generation;                               /* the release watch: the generation that must have settled */
    char rv[64];                                        /* the last resourceVersion seen: a new watch resumes from it */
    atomic_bool *stop;
    kube_client *client;
    const kube_resource *resource;
    const char *ns, *name;
    pthread_t thread;
} watcher;

/* the Deployment's container image carries the wanted digest */
static bool image_matches(watcher *w, const cJSON *obj)
{
    const cJSON *ct;
    cJSON_ArrayForEach(ct, json_get(obj, "spec", "template", "spec", "containers", NULL)) {
        const char *image = json_str(ct, "image", NULL);
        if (image && w->want[0] && strstr(image, w->want))
            return true;
    }
    return false;
}

/* the release is Succeeded for the wanted generation */
static bool release_settled(watcher *w, const cJSON *obj)
{
    const char *phase = json_str(obj, "status", "phase", NULL);
    long long gen = json_int(-1, obj, "metadata", "generation", NULL);
    return w->generation > 0 && gen >= w->generation && phase && strcmp(phase, "Succeeded") == 0 &&
           json_int(-1, obj, "status", "observedGeneration", NULL) == gen;
}

static int on_event(void *ctx, kube_watch_type type, cJSON *obj)
{
    watcher *w = ctx;
    const char *rv = json_str(obj, "metadata", "resourceVersion", NULL);
    if (rv)
        snprintf(w->rv, sizeof(w->rv), "%s", rv);
    if (type == KUBE_WATCH_ADDED || type == KUBE_WATCH_MODIFIED) {
        pthread_mutex_lock(&w->lock);
        if (w->match(w, obj)) {
            w->matched = true;
            pthread_cond_signal(&w->seen);
        }
        pthread_mutex_unlock(&w->lock);
    }
    cJSON_Delete(obj);
    return atomic_load(w->stop) ? 1 : 0;
}

static void *watch_loop(void *arg)
{
    watcher *w = arg;
    char field[300];
    snprintf(field, sizeof(field), "metadata.name=%s", w->name);
    while (!atomic_load(w->stop)) {
        kube_watch_opts o = {.field_selector = field,
                             .stop = w->stop,
                             .timeout_seconds = 300,
                             .resource_version = w->rv[0] ? w->rv : NULL};
        int err = kube_watch(w->client, w->resource, w->ns, &o, on_event, w);
        if (err < 0 && err != MB_ESTOPPED)
            fprintf(stderr, "release_bench: the watch of %s ended (%s); resuming\n", w->name, mb_error_last());
        if (err == MB_EGONE)
            w->rv[0] = '\0';
    }
    return NULL;
}

/* Waits up to 10 s for w to match; true if it did. */
static bool wait_matched(watcher *w)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&w->lock);
    while (!w->matched && pthread_cond_timedwait(&w->seen, &w->lock, &deadline) == 0)
        ;
    bool ok = w->matched;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    kube_config *cfg = NULL;
    kube_client *client = NULL;
    atomic_bool stop = false;
    int n;

    if (argc != 5 || (n = atoi(argv[4])) < 1) {
        fprintf(stderr, "usage: release_bench NAMESPACE RELEASE DEPLOYMENT CHANGES\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (kube_config_load(&cfg, NULL, NULL) < 0 || kube_client_new(&client, cfg, NULL) < 0) {
        fprintf(stderr, "release_bench: %s\n", mb_error_last());
        return 1;
    }
    watcher dep = {.lock = PTHREAD_MUTEX_INITIALIZER,
                   .seen = PTHREAD_COND_INITIALIZER,
                   .match = image_matches,
                   .stop = &stop,
                   .client = client,
                   .resource = &KUBE_DEPLOYMENTS,
                   .ns = argv[1],
                   .name = argv[3]};
    watcher rel = {.lock = PTHREAD_MUTEX_INITIALIZER,
                   .seen = PTHREAD_COND_INITIALIZER,
                   .match = release_settled,
                   .stop = &stop,
                   .client = client,
                   .resource = &API_GOVERNEDAPIRELEASES,
                   .ns = argv[1],
                   .name = argv[2]};
    pthread_create(&dep.thread, NULL, watch_loop, &dep);
    pthread_create(&rel.thread, NULL, watch_loop, &rel);

    double *lat = calloc((size_t)n, sizeof(double));
    int done = 0;
    for (int i = 0; i < n; i++) {
        unsigned char hex[65];
        char patch[200];
        unsigned char raw[32];
        cJSON *after = NULL;
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
        pthread_mutex_lock(&dep.lock);
        snprintf(dep.want, sizeof(dep.want), "sha256:%s", hex);
        dep.matched = false;
        pthread_mutex_unlock(&dep.lock);
        pthread_mutex_lock(&rel.lock);
        rel.generation = 0;
        rel.matched = false;
        pthread_mutex_unlock(&rel.lock);
        snprintf(patch, sizeof(patch), "{\"spec\":{\"image\":{\"digest\":\"sha256:%s\"}}}", hex);
        int64_t t0 = mb_monotonic_ns();
        if (kube_patch(&after, client, &API_GOVERNEDAPIRELEASES, argv[1], argv[2], NULL, KUBE_PATCH_MERGE, patch) < 0) {
            fprintf(stderr, "release_bench: %s\n", mb_error_last());
            break;
        }
        pthread_mutex_lock(&rel.lock);
        rel.generation = json_int(0, after, "metadata", "generation", NULL);
        pthread_mutex_unlock(&rel.lock);
        cJSON_Delete(after);
        if (!wait_matched(&dep)) {
            fprintf(stderr, "release_bench: change %d (%s) not seen through the watch within 10 s\n", i, dep.want);
            continue;
        }
        lat[done++] = mb_elapsed_ms(t0);
        if (!wait_matched(&rel))
            fprintf(stderr, "release_bench: change %d did not reach Succeeded within 10 s\n", i);
        /* a change from Git meets an operator at rest, not one still sending the last change's Events */
        nanosleep(&(struct timespec){.tv_nsec = SETTLE_MS * 1000 * 1000}, NULL);
    }
    atomic_store(&stop, true);
    pthread_join(dep.thread, NULL);
    pthread_join(rel.thread, NULL);
    if (done) {
        qsort(lat, (size_t)done, sizeof(double), cmp);
        printf("spec change -> Deployment patch seen, %d changes: p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
               done, lat[done / 2], lat[done * 9 / 10], lat[(done * 99) / 100 < done ? (done * 99) / 100 : done - 1],
               lat[done - 1]);
    }
    free(lat);
    kube_client_free(client);
    curl_global_cleanup();
    return done == n ? 0 : 1;
}
