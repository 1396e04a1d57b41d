/*
 * The leader elector: a thread that runs client-go's tryAcquireOrRenew
 * (leader_decide plus a get and a create or update of the Lease) every retry
 * period, and a watchdog thread that ends leadership the moment the renew
 * deadline passes without a successful renew, whatever the first thread is
 * blocked in. Their shared state (leading, lost, the time of the last renew,
 * stop) is under one mutex; the Lease object and the observation belong to
 * the elector thread (and to stop, after it has joined).
 */
#include "runtime/leader.h"
#include "runtime/metrics_families.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_NAME "membrane-leader"
#define DEFAULT_LEASE_MS 15000
#define DEFAULT_RENEW_MS 10000
#define DEFAULT_RETRY_MS 2000
#define JITTER_FACTOR 1.2

/* ---- the decision ---- */

static bool record_equal(const leader_record *a, const leader_record *b)
{
    return strcmp(a->holder, b->holder) == 0 && a->duration_s == b->duration_s &&
           strcmp(a->acquire_time, b->acquire_time) == 0 && strcmp(a->renew_time, b->renew_time) == 0 &&
           a->transitions == b->transitions;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

bool leader_lease_valid(const leader_observation *obs, int64_t now_ms)
{
    return obs->seen && obs->changed_ms + (int64_t)obs->record.duration_s * 1000 > now_ms;
}

leader_action leader_decide(leader_record *out, leader_observation *obs, const leader_record *current,
                            const char *identity, long duration_s, int64_t now_ms, const char *now_time)
{
    memset(out, 0, sizeof(*out));
    copy_text(out->holder, sizeof(out->holder), identity);
    out->duration_s = duration_s;
    copy_text(out->renew_time, sizeof(out->renew_time), now_time);
    if (!current) {
        copy_text(out->acquire_time, sizeof(out->acquire_time), now_time);
        return LEADER_CREATE;
    }
    if (!obs->seen || !record_equal(&obs->record, current)) {
        obs->record = *current;
        obs->changed_ms = now_ms;
        obs->seen = true;
    }
    bool ours = strcmp(current->holder, identity) == 0;
    if (current->holder[0] && !ours && leader_lease_valid(obs, now_ms))
        return LEADER_WAIT;
    if (ours) {
        copy_text(out->acquire_time, sizeof(out->acquire_time), current->acquire_time);
        out->transitions = current->transitions;
    } else {
        copy_text(out->acquire_time, sizeof(out->acquire_time), now_time);
        out->transitions = current->transitions + 1;
    }
    return LEADER_UPDATE;
}

void leader_release_record(leader_record *out, const leader_record *held, const char *now_time)
{
    memset(out, 0, sizeof(*out));
    out->duration_s = 1;
    copy_text(out->acquire_time, sizeof(out->acquire_time), now_time);
    copy_text(out->renew_time, sizeof(out->renew_time), now_time);
    out->transitions = held->transitions;
}

void leader_record_from_lease(leader_record *out, const cJSON *lease)
{
    memset(out, 0, sizeof(*out));
    copy_text(out->holder, sizeof(out->holder), json_str(lease, "spec", "holderIdentity", NULL));
    out->duration_s = (long)json_int(0, lease, "spec", "leaseDurationSeconds", NULL);
    copy_text(out->acquire_time, sizeof(out->acquire_time), json_str(lease, "spec", "acquireTime", NULL));
    copy_text(out->renew_time, sizeof(out->renew_time), json_str(lease, "spec", "renewTime", NULL));
    out->transitions = (long)json_int(0, lease, "spec", "leaseTransitions", NULL);
}

/* ---- the elector ---- */

struct leader_elector {
    kube_client *client;
    char *ns, *name, *identity;
    long lease_ms, renew_ms, retry_ms;
    void (*on_started_leading)(void *ctx);
    void (*on_stopped_leading)(void *ctx);
    void *ctx;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* on the monotonic clock */
    bool stop, leading, lost;
    int64_t renewed_ms;
    atomic_bool is_leader;
    pthread_t thread, watchdog;
    bool started;

    /* the elector thread's */
    leader_observation obs;
    cJSON *lease;
    uint64_t rnd;
};

/* Now as a metav1.MicroTime: "2026-11-24T05:38:52.238000Z". */
static void micro_time(char out[LEADER_TIME_MAX])
{
    struct timespec ts;
    struct tm tm;
    size_t n;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, LEADER_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, LEADER_TIME_MAX - n, ".%06uZ", (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

/* Waits on le->cond until deadline_ms (monotonic) or a signal. Under le->mu. */
static void wait_until(leader_elector *le, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&le->cond, &le->mu, &ts);
}

static double jitter(leader_elector *le)
{
    le->rnd ^= le->rnd << 13;
    le->rnd ^= le->rnd >> 7;
    le->rnd ^= le->rnd << 17;
    return (double)(le->rnd >> 11) / 9007199254740992.0;
}

/* Writes rec into the spec of lease (a copy the caller owns). 0 or MB_ENOMEM. */
static int lease_apply(cJSON *lease, const leader_record *rec)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    if (!cJSON_IsObject(spec)) {
        cJSON_DeleteItemFromObjectCaseSensitive(lease, "spec");
        if (!(spec = cJSON_AddObjectToObject(lease, "spec")))
            return mb_error_set(MB_ENOMEM, "out of memory");
    }
    int err = 0;
    if ((err = json_set_item(spec, "holderIdentity", cJSON_CreateString(rec->holder))) < 0 ||
        (err = json_set_item(spec, "leaseDurationSeconds", cJSON_CreateNumber((double)rec->duration_s))) < 0 ||
        (err = json_set_item(spec, "acquireTime", cJSON_CreateString(rec->acquire_time))) < 0 ||
        (err = json_set_item(spec, "renewTime", cJSON_CreateString(rec->renew_time))) < 0 ||
        (err = json_set_item(spec, "leaseTransitions", cJSON_CreateNumber((double)rec->transitions))) < 0)
        return err;
    return 0;
}

static long lease_seconds(const leader_elector *le)
{
    return (le->lease_ms + 999) / 1000;
}

/* Writes rec: a create when create is set, else an update of le->lease. On success le->lease is the answer. */
static int lease_write(leader_elector *le, const leader_record *rec, bool create)
{
    cJSON *obj = NULL, *answer = NULL;
    int err = 0;

    if (create)
        obj = cJSON_Parse("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{}}");
    else
        obj = cJSON_Duplicate(le->lease, true);
    if (!obj) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (create) {
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        if (!cJSON_AddStringToObject(meta, "name", le->name) || !cJSON_AddStringToObject(meta, "namespace", le->ns)) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((err = lease_apply(obj, rec)) < 0)
        goto done;
    if (create)
        err = kube_create(&answer, le->client, &KUBE_LEASES, le->ns, obj);
    else
        err = kube_update(&answer, le->client, &KUBE_LEASES, le->ns, obj, NULL);
    if (err < 0)
        goto done;
    cJSON_Delete(le->lease);
    le->lease = answer;
    answer = NULL;
done:
    cJSON_Delete(answer);
    cJSON_Delete(obj);
    return err;
}

static void observe_written(leader_elector *le, const leader_record *rec, int64_t now_ms)
{
    le->obs.record = *rec;
    le->obs.changed_ms = now_ms;
    le->obs.seen = true;
}

/* client-go's tryAcquireOrRenew: true when this process holds the Lease now. */
static bool try_acquire_or_renew(leader_elector *le)
{
    char now_time[LEADER_TIME_MAX], before[LEADER_IDENTITY_MAX];
    int64_t now_ms = mb_monotonic_ms();
    leader_record rec, current;
    cJSON *obj = NULL;
    int err;

    micro_time(now_time);
    /* the fast path: holding a valid lease, renew on the resourceVersion last written */
    if (le->lease && strcmp(le->obs.record.holder, le->identity) == 0 && leader_lease_valid(&le->obs, now_ms)) {
        rec = le->obs.record;
        rec.duration_s = lease_seconds(le);
        copy_text(rec.renew_time, sizeof(rec.renew_time), now_time);
        if (lease_write(le, &rec, false) == 0) {
            observe_written(le, &rec, now_ms);
            return true;
        }
        log_debug("renewing Lease %s/%s on what was last written failed, reading it again: %s", le->ns, le->name,
                  mb_error_last());
    }

    err = kube_get(&obj, le->client, &KUBE_LEASES, le->ns, le->name);
    if (err == MB_ENOTFOUND) {
        leader_decide(&rec, &le->obs, NULL, le->identity, lease_seconds(le), now_ms, now_time);
        if (lease_write(le, &rec, true) < 0) {
            log_info("cannot create Lease %s/%s: %s", le->ns, le->name, mb_error_last());
            return false;
        }
        observe_written(le, &rec, now_ms);
        return true;
    }
    if (err < 0) {
        log_warn("cannot read Lease %s/%s: %s", le->ns, le->name, mb_error_last());
        return false;
    }
    cJSON_Delete(le->lease);
    le->lease = obj;
    leader_record_from_lease(&current, obj);
    copy_text(before, sizeof(before), le->obs.seen ? le->obs.record.holder : "");
    leader_action act = leader_decide(&rec, &le->obs, &current, le->identity, lease_seconds(le), now_ms, now_time);
    if (strcmp(before, current.holder) != 0 && current.holder[0] && strcmp(current.holder, le->identity) != 0)
        log_info("Lease %s/%s is held by %s", le->ns, le->name, current.holder);
    if (act == LEADER_WAIT)
        return false;
    if (lease_write(le, &rec, false) < 0) {
        log_info("cannot take Lease %s/%s: %s", le->ns, le->name, mb_error_last());
        return false;
    }
    observe_written(le, &rec, now_ms);
    return true;
}

static void *elector_main(void *arg)
{
    leader_elector *le = arg;

    for (;;) {
        bool ok = try_acquire_or_renew(le), started = false;
        pthread_mutex_lock(&le->mu);
        if (le->stop || le->lost) {
            pthread_mutex_unlock(&le->mu);
            break;
        }
        int64_t now = mb_monotonic_ms();
        if (ok) {
            le->renewed_ms = now;
            if (!le->leading) {
                le->leading = started = true;
                atomic_store(&le->is_leader, true);
                metrics_leader_set(true);
                pthread_cond_broadcast(&le->cond);
            }
        }
        int64_t wait = le->leading ? le->retry_ms : le->retry_ms + (int64_t)(jitter(le) * JITTER_FACTOR * le->retry_ms);
        pthread_mutex_unlock(&le->mu);

        if (started) {
            log_info("this process (%s) is now the leader (Lease %s/%s)", le->identity, le->ns, le->name);
            if (le->on_started_leading)
                le->on_started_leading(le->ctx);
        }
        pthread_mutex_lock(&le->mu);
        int64_t until = now + wait;
        while (!le->stop && !le->lost && mb_monotonic_ms() < until)
            wait_until(le, until);
        bool done = le->stop || le->lost;
        pthread_mutex_unlock(&le->mu);
        if (done)
            break;
    }
    return NULL;
}

/* Ends leadership the moment the renew deadline passes without a successful renew. */
static void *watchdog_main(void *arg)
{
    leader_elector *le = arg;

    pthread_mutex_lock(&le->mu);
    while (!le->stop && !le->lost) {
        if (!le->leading) {
            pthread_cond_wait(&le->cond, &le->mu);
            continue;
        }
        int64_t deadline = le->renewed_ms + le->renew_ms;
        if (mb_monotonic_ms() < deadline) {
            wait_until(le, deadline);
            continue;
        }
        le->lost = true;
        le->leading = false;
        atomic_store(&le->is_leader, false);
        metrics_leader_set(false);
        pthread_cond_broadcast(&le->cond);
        pthread_mutex_unlock(&le->mu);
        log_error("this process (%s) lost the leadership: Lease %s/%s was not renewed for %ld ms", le->identity, le->ns,
                  le->name, le->renew_ms);
        if (le->on_stopped_leading)
            le->on_stopped_leading(le->ctx);
        pthread_mutex_lock(&le->mu);
    }
    pthread_mutex_unlock(&le->mu);
    return NULL;
}

static int identity_default(char **out)
{
    char host[256] = "";
    unsigned char rnd[8];
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        strcpy(host, "membrane");
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid() << 40;
        memcpy(rnd, &x, sizeof(rnd));
    }
    if (asprintf(out, "%s_%02x%02x%02x%02x%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
                 rnd[6], rnd[7]) < 0) {
        *out = NULL;
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return 0;
}

int leader_elector_new(leader_elector **out, const leader_elector_opts *opts)
{
    leader_elector *le = NULL;
    pthread_condattr_t attr;
    int err = 0;

    *out = NULL;
    if (!opts || !opts->client || !opts->namespace || !*opts->namespace)
        return mb_error_set(MB_EINVAL, "leader election needs a client and a namespace for its Lease "
                                       "(--leader-election-namespace)");
    if (opts->identity && (!*opts->identity || strlen(opts->identity) >= LEADER_IDENTITY_MAX))
        return mb_error_set(MB_EINVAL, "leader election: the identity must be 1 to %d characters",
                            LEADER_IDENTITY_MAX - 1);
    if (!(le = calloc(1, sizeof(*le))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    le->client = opts->client;
    le->lease_ms = opts->lease_duration_ms > 0 ? opts->lease_duration_ms : DEFAULT_LEASE_MS;
    le->renew_ms = opts->renew_deadline_ms > 0 ? opts->renew_deadline_ms : DEFAULT_RENEW_MS;
    le->retry_ms = opts->retry_period_ms > 0 ? opts->retry_period_ms : DEFAULT_RETRY_MS;
    le->on_started_leading = opts->on_started_leading;
    le->on_stopped_leading = opts->on_stopped_leading;
    le->ctx = opts->ctx;
    pthread_mutex_init(&le->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&le->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (le->lease_ms <= le->renew_ms || (double)le->renew_ms <= JITTER_FACTOR * (double)le->retry_ms) {
        err = mb_error_set(MB_EINVAL,
                           "leader election: the lease duration (%ld ms) must be longer than the renew "
                           "deadline (%ld ms), and that longer than 1.2 times the retry period (%ld ms)",
                           le->lease_ms, le->renew_ms, le->retry_ms);
        goto done;
    }
    if (!(le->ns = strdup(opts->namespace)) || !(le->name = strdup(opts->name ? opts->name : DEFAULT_NAME))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (opts->identity) {
        if (!(le->identity = strdup(opts->identity))) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
    } else if ((err = identity_default(&le->identity)) < 0) {
        goto done;
    }
    le->rnd = (uint64_t)mb_monotonic_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)le;
    if (le->rnd == 0)
        le->rnd = 1;
    *out = le;
    le = NULL;
done:
    leader_elector_free(le);
    return err;
}

int leader_elector_start(leader_elector *le)
{
    if (le->started || le->stop)
        return mb_error_set(MB_EINVAL, "leader election for Lease %s/%s has already been started", le->ns, le->name);
    if (pthread_create(&le->watchdog, NULL, watchdog_main, le) != 0)
        return mb_error_set(MB_ERROR, "leader election: cannot start a thread");
    if (pthread_create(&le->thread, NULL, elector_main, le) != 0) {
        pthread_mutex_lock(&le->mu);
        le->stop = true;
        pthread_cond_broadcast(&le->cond);
        pthread_mutex_unlock(&le->mu);
        pthread_join(le->watchdog, NULL);
        return mb_error_set(MB_ERROR, "leader election: cannot start a thread");
    }
    le->started = true;
    log_info("trying to become the leader as %s (Lease %s/%s)", le->identity, le->ns, le->name);
    return 0;
}

bool leader_elector_is_leader(leader_elector *le)
{
    return le && atomic_load(&le->is_leader);
}

const char *leader_elector_identity(const leader_elector *le)
{
    return le->identity;
}

/* Gives the Lease up when the last record written or read names this process. */
static void release(leader_elector *le)
{
    char now_time[LEADER_TIME_MAX];
    leader_record rec;

    if (!le->lease || !le->obs.seen || strcmp(le->obs.record.holder, le->identity) != 0)
        return;
    micro_time(now_time);
    leader_release_record(&rec, &le->obs.record, now_time);
    if (lease_write(le, &rec, false) < 0) {
        log_warn("cannot release Lease %s/%s (a standby takes over when it expires): %s", le->ns, le->name,
                 mb_error_last());
        return;
    }
    observe_written(le, &rec, mb_monotonic_ms());
    log_info("released Lease %s/%s", le->ns, le->name);
}

void leader_elector_stop(leader_elector *le)
{
    if (!le)
        return;
    pthread_mutex_lock(&le->mu);
    bool was_stopped = le->stop;
    le->stop = true;
    pthread_cond_broadcast(&le->cond);
    pthread_mutex_unlock(&le->mu);
    if (was_stopped || !le->started)
        return;
    pthread_join(le->thread, NULL);
    pthread_join(le->watchdog, NULL);
    pthread_mutex_lock(&le->mu);
    bool was_leading = le->leading;
    le->leading = false;
    atomic_store(&le->is_leader, false);
    pthread_mutex_unlock(&le->mu);
    if (was_leading)
        metrics_leader_set(false);
    release(le);
}

void leader_elector_free(leader_elector *le)
{
    if (!le)
        return;
    leader_elector_stop(le);
    cJSON_Delete(le->lease);
    pthread_mutex_destroy(&le->mu);
    pthread_cond_destroy(&le->cond);
    free(le->ns);
    free(le->name);
    free(le->identity);
    free(le);
}

void leader_lease_name(char *out, const char *selector)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (!selector || !*selector) {
        snprintf(out, LEADER_LEASE_NAME_MAX, "%s", DEFAULT_NAME);
        return;
    }
    SHA256((const unsigned char *)selector, strlen(selector), md);
    snprintf(out, LEADER_LEASE_NAME_MAX, "%s-%02x%02x%02x%02x", DEFAULT_NAME, md[0], md[1], md[2], md[3]);
}
