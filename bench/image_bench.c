/*
 * Benchmark of the image verifier (image/verify.h) against a real registry:
 * for each of N digests signed by one key, the wall time of a cold
 * verification (a fresh verifier, so nothing is cached: image_verifier_get
 * queues the run, and the time is until its notification, every fetch and
 * signature check included) and of a cached one (image_verifier_get answering
 * from the cache of the same verifier once every digest is verified). Prints
 * min, p50, p90, p99 and max of each, and how many verifications ran; a
 * digest that does not verify is reported on stderr and the exit status is 1
 * (a broken set-up is not timed). Built by CMake as bench_image; hack/bench.sh
 * runs it against a local registry with cosign-signed images:
 *
 *   bench_image [-v] [-a PREDICATE_TYPE]... [-c CA.pem] [-d dockerconfig.json]
 *               BASE_URL REPOSITORY PUBLIC_KEY.pem DIGEST... | @DIGESTS_FILE
 *
 * BASE_URL: http://host:port (plain http: insecureRegistry) or https://host:port;
 * REPOSITORY: the path in that registry (e.g. bench/app); DIGESTS_FILE: one
 * sha256:<hex> a line ('#' lines skipped). -a: an attestation type every
 * digest must carry (repeatable). -v: print each digest's result. The cold figure includes one verification
 * at a time, in order, as the verifier runs them.
 */
#include "image/verify.h"
#include "net/transfer.h"
#include "util/clock.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTS_MAX 8

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static void report(const char *title, const char *unit, double scale, double *t, size_t n)
{
    qsort(t, n, sizeof(double), cmp);
    printf("%s, %zu digests:\n", title, n);
    printf("  min %.3f %s  p50 %.3f %s  p90 %.3f %s  p99 %.3f %s  max %.3f %s\n", t[0] * scale, unit,
           pct(t, n, 50) * scale, unit, pct(t, n, 90) * scale, unit, pct(t, n, 99) * scale, unit, t[n - 1] * scale,
           unit);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *p = realloc(buf, cap = (n + 4096 + 1) * 2);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The notifications: how many came, under a lock the main thread waits on. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned long notified;

static void on_done(void *ctx, const char *key)
{
    (void)ctx;
    (void)key;
    pthread_mutex_lock(&mu);
    notified++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_image [-v] [-a PREDICATE_TYPE]... [-c CA.pem] [-d dockerconfig.json] BASE_URL "
                    "REPOSITORY PUBLIC_KEY.pem DIGEST... | @DIGESTS_FILE\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *atts[ATTS_MAX];
    size_t natts = 0, ndig = 0, keylen = 0;
    char *ca = NULL, *cfg = NULL, *key = NULL, *list = NULL, **digests = NULL, repo[512];
    int opt, rc = 1;
    bool verbose = false;
    net_loop *net = NULL;
    image_verifier *v = NULL;
    double *cold = NULL, *cached = NULL;

    while ((opt = getopt(argc, argv, "va:c:d:")) != -1) {
        if (opt == 'v')
            verbose = true;
        else if (opt == 'a' && natts < ATTS_MAX)
            atts[natts++] = optarg;
        else if (opt == 'c' && !(ca = slurp(optarg, NULL)))
            return fprintf(stderr, "bench: cannot read %s\n", optarg), 2;
        else if (opt == 'd' && !(cfg = slurp(optarg, NULL)))
            return fprintf(stderr, "bench: cannot read %s\n", optarg), 2;
        else if (opt != 'v' && opt != 'a' && opt != 'c' && opt != 'd')
            return usage();
    }
    if (argc - optind < 4)
        return usage();
    const char *base = argv[optind], *path = argv[optind + 1];
    bool insecure = strncmp(base, "http://", 7) == 0;
    if (!insecure && strncmp(base, "https://", 8) != 0)
        return usage();
    snprintf(repo, sizeof(repo), "%s/%s", base + (insecure ? 7 : 8), path);
    if (!(key = slurp(argv[optind + 2], &keylen)))
        return fprintf(stderr, "bench: cannot read %s\n", argv[optind + 2]), 2;
    if (argv[optind + 3][0] == '@') {
        if (!(list = slurp(argv[optind + 3] + 1, NULL)))
            return fprintf(stderr, "bench: cannot read %s\n", argv[optind + 3] + 1), 2;
        for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
            line[strcspn(line, " \t\r")] = '\0';
            if (!line[0] || line[0] == '#')
                continue;
            char **d = realloc(digests, (ndig + 1) * sizeof(char *));
            if (!d)
                goto done;
            digests = d;
            digests[ndig++] = line;
        }
    } else {
        ndig = (size_t)(argc - optind - 3);
        if (!(digests = calloc(ndig, sizeof(char *))))
            goto done;
        for (size_t i = 0; i < ndig; i++)
            digests[i] = argv[optind + 3 + i];
    }
    if (ndig == 0 || !(cold = calloc(ndig, sizeof(double))) || !(cached = calloc(ndig, sizeof(double))))
        goto done;
    if (net_loop_new(&net, NULL) < 0 || image_verifier_new(&v, net, on_done, NULL) < 0) {
        fprintf(stderr, "bench: %s\n", mb_error_last());
        goto done;
    }
    rc = 0;
    image_verify_input in = {.repository = repo,
                             .public_key_pem = key,
                             .public_key_len = keylen,
                             .attestations = atts,
                             .n_attestations = natts,
                             .docker_config = cfg,
                             .ca_pem = ca,
                             .insecure = insecure};
    for (size_t i = 0; i < ndig; i++) {
        in.digest = digests[i];
        image_verify_result r;
        pthread_mutex_lock(&mu);
        unsigned long before = notified;
        pthread_mutex_unlock(&mu);
        int64_t t0 = mb_monotonic_ns();
        if (image_verifier_get(&r, v, &in, "bench") < 0) {
            fprintf(stderr, "bench: %s\n", mb_error_last());
            rc = 1;
            break;
        }
        if (r.state == IMAGE_VERIFY_PENDING) {
            pthread_mutex_lock(&mu);
            while (notified == before)
                pthread_cond_wait(&cond, &mu);
            pthread_mutex_unlock(&mu);
            image_verifier_get(&r, v, &in, "bench");
        }
        cold[i] = mb_elapsed_ms(t0);
        if (verbose)
            printf("%s: %s [%s] payload %s\n", digests[i], r.message, r.layout, r.payload_sha256);
        if (r.state != IMAGE_VERIFY_VERIFIED) {
            fprintf(stderr, "bench: %s: %s\n", digests[i], r.message);
            rc = 1;
        }
    }
    for (size_t i = 0; rc == 0 && i < ndig; i++) {
        in.digest = digests[i];
        image_verify_result r;
        int64_t t0 = mb_monotonic_ns();
        int err = image_verifier_get(&r, v, &in, "bench");
        cached[i] = mb_elapsed_ms(t0);
        if (err < 0 || r.state != IMAGE_VERIFY_VERIFIED) {
            fprintf(stderr, "bench: %s was not answered from the cache\n", digests[i]);
            rc = 1;
        }
    }
    if (rc == 0) {
        report("cold verification (fresh verifier, every fetch and check)", "ms", 1.0, cold, ndig);
        report("cached verification (image_verifier_get hit)", "us", 1000.0, cached, ndig);
        printf("verifications run: %lu\n", image_verifier_runs(v));
    }
done:
    image_verifier_free(v);
    net_loop_free(net);
    free(cold);
    free(cached);
    free(digests);
    free(list);
    free(key);
    free(ca);
    free(cfg);
    return rc;
}
