/*
 * Leader election against a real kube-apiserver, each test on a Lease in a
 * namespace of its own:
 * - two candidates: exactly one leads (and the Lease names it); when it stops
 *   it releases the Lease and the other takes over sooner than the 15 s
 *   lease could have expired, with leaseTransitions one higher;
 * - a leader whose Lease is overwritten by someone else stops leading
 *   (on_stopped_leading) once its renew deadline passes, leaves the other
 *   holder's record alone, does not come back, and does not release what it
 *   no longer holds;
 * - a Lease whose renewTime is years old by the wall clock is still waited
 *   for during its leaseDurationSeconds from when the candidate saw it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube_itest.h"

#include "kube/client.h"
#include "runtime/leader.h"
#include "runtime/metrics_families.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int setup(void **state)
{
    return itest_fixture_setup(state, "leader");
}

static int teardown(void **state)
{
    metrics_default_free();
    return itest_fixture_teardown(state);
}

/* A candidate and what its callbacks saw. */
typedef struct {
    leader_elector *le;
    atomic_int started;
    atomic_int stopped;
} candidate;

static void on_started(void *ctx)
{
    atomic_fetch_add(&((candidate *)ctx)->started, 1);
}

static void on_stopped(void *ctx)
{
    atomic_fetch_add(&((candidate *)ctx)->stopped, 1);
}

static void candidate_new(candidate *cand, itest_fixture *f, const char *identity, long lease_ms, long renew_ms,
                          long retry_ms)
{
    leader_elector_opts opts = {
        .client = f->c,
        .namespace = f->ns,
        .identity = identity,
        .lease_duration_ms = lease_ms,
        .renew_deadline_ms = renew_ms,
        .retry_period_ms = retry_ms,
        .on_started_leading = on_started,
        .on_stopped_leading = on_stopped,
        .ctx = cand,
    };
    atomic_store(&cand->started, 0);
    atomic_store(&cand->stopped, 0);
    if (leader_elector_new(&cand->le, &opts) < 0)
        fail_msg("leader_elector_new: %s", mb_error_last());
    assert_int_equal(leader_elector_start(cand->le), 0);
}

static cJSON *lease_get(itest_fixture *f)
{
    cJSON *lease = NULL;
    if (kube_get(&lease, f->c, &KUBE_LEASES, f->ns, "membrane-leader") < 0)
        fail_msg("cannot read the Lease: %s", mb_error_last());
    return lease;
}

static const char *holder(const cJSON *lease)
{
    const char *h = json_str(lease, "spec", "holderIdentity", NULL);
    return h ? h : "";
}

static bool any_leads(void *ctx)
{
    candidate *c = ctx;
    return leader_elector_is_leader(c[0].le) || leader_elector_is_leader(c[1].le);
}

static bool leads(void *ctx)
{
    return leader_elector_is_leader(((candidate *)ctx)->le);
}

static bool has_started(void *ctx)
{
    return atomic_load(&((candidate *)ctx)->started) > 0;
}

static bool has_stopped(void *ctx)
{
    return atomic_load(&((candidate *)ctx)->stopped) > 0;
}

static double is_leader_gauge(void)
{
    return metrics_value(metrics_family_find(metrics_default(), "membrane_is_leader"), NULL);
}

static void test_one_leader_and_release_on_stop(void **state)
{
    itest_fixture *f = itest_need(state);
    static candidate cands[2]; /* static: callbacks may still run if a failed assertion leaves threads behind */
    cJSON *lease;

    /* client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period */
    candidate_new(&cands[0], f, "candidate-a", 0, 0, 0);
    candidate_new(&cands[1], f, "candidate-b", 0, 0, 0);
    assert_true(itest_eventually(any_leads, cands, 20000));

    /* for a few retry periods, exactly one leads */
    for (int i = 0; i < 100; i++) {
        bool a = leader_elector_is_leader(cands[0].le), b = leader_elector_is_leader(cands[1].le);
        if (a == b)
            fail_msg("%s lead at once", a ? "both candidates" : "neither candidate");
        itest_sleep_ms(50);
    }
    candidate *leader = leader_elector_is_leader(cands[0].le) ? &cands[0] : &cands[1];
    candidate *standby = leader == &cands[0] ? &cands[1] : &cands[0];
    assert_int_equal(atomic_load(&leader->started), 1);
    assert_int_equal(atomic_load(&standby->started), 0);
    assert_true(is_leader_gauge() == 1);
    lease = lease_get(f);
    assert_string_equal(holder(lease), leader_elector_identity(leader->le));
    assert_int_equal(json_int(-1, lease, "spec", "leaseDurationSeconds", NULL), 15);
    long transitions = (long)json_int(-1, lease, "spec", "leaseTransitions", NULL);
    cJSON_Delete(lease);

    /* the leader stops: the Lease is released at once */
    leader_elector_stop(leader->le);
    assert_false(leader_elector_is_leader(leader->le));
    lease = lease_get(f);
    assert_string_equal(holder(lease), "");
    assert_int_equal(json_int(-1, lease, "spec", "leaseDurationSeconds", NULL), 1);
    cJSON_Delete(lease);

    /*
     * The standby takes over at its next try. Had the Lease not been
     * released it would have to see it unchanged for 15 s first, so a bound
     * below that tells release from expiry.
     */
    assert_true(itest_eventually(leads, standby, 12000));
    /* on_started_leading runs on the elector's thread just after it is the leader */
    assert_true(itest_eventually(has_started, standby, 5000));
    assert_int_equal(atomic_load(&standby->started), 1);
    lease = lease_get(f);
    assert_string_equal(holder(lease), leader_elector_identity(standby->le));
    assert_int_equal(json_int(-1, lease, "spec", "leaseTransitions", NULL), transitions + 1);
    assert_non_null(json_str(lease, "spec", "acquireTime", NULL));
    cJSON_Delete(lease);
    assert_true(is_leader_gauge() == 1);

    /* a voluntary stop is not a loss */
    assert_int_equal(atomic_load(&leader->stopped), 0);
    leader_elector_free(standby->le);
    leader_elector_free(leader->le);
    assert_int_equal(atomic_load(&standby->stopped), 0);
    assert_true(is_leader_gauge() == 0);
}

static void test_stolen_lease_ends_leadership(void **state)
{
    itest_fixture *f = itest_need(state);
    static candidate cand;
    cJSON *lease = NULL;
    char now[64];
    time_t t = time(NULL);
    struct tm tm;
    int err = MB_ECONFLICT;

    candidate_new(&cand, f, "candidate-a", 6000, 4000, 1000);
    assert_true(itest_eventually(leads, &cand, 15000));

    /* someone else writes the Lease (retrying while our candidate's renewals conflict with it) */
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
    for (int i = 0; i < 10 && err == MB_ECONFLICT; i++) {
        lease = lease_get(f);
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
        cJSON_ReplaceItemInObjectCaseSensitive(spec, "holderIdentity", cJSON_CreateString("thief"));
        cJSON_ReplaceItemInObjectCaseSensitive(spec, "renewTime", cJSON_CreateString(now));
        cJSON_ReplaceItemInObjectCaseSensitive(spec, "leaseDurationSeconds", cJSON_CreateNumber(60));
        err = kube_update(NULL, f->c, &KUBE_LEASES, f->ns, lease, NULL);
        cJSON_Delete(lease);
    }
    assert_int_equal(err, 0);

    /* it can no longer renew: leadership ends at its renew deadline (4 s after its last renew) */
    assert_true(itest_eventually(has_stopped, &cand, 10000));
    assert_false(leader_elector_is_leader(cand.le));
    assert_true(is_leader_gauge() == 0);

    /* it does not try again, and leaves the other holder's record alone, also when it stops */
    itest_sleep_ms(2500);
    assert_int_equal(atomic_load(&cand.started), 1);
    assert_int_equal(atomic_load(&cand.stopped), 1);
    assert_false(leader_elector_is_leader(cand.le));
    leader_elector_free(cand.le);
    lease = lease_get(f);
    assert_string_equal(holder(lease), "thief");
    assert_int_equal(json_int(-1, lease, "spec", "leaseDurationSeconds", NULL), 60);
    cJSON_Delete(lease);
}

static void test_old_renew_time_is_waited_for_on_the_local_clock(void **state)
{
    itest_fixture *f = itest_need(state);
    static candidate cand;
    cJSON *lease = itest_json("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                              "\"metadata\":{\"name\":\"membrane-leader\"},\"spec\":{\"holderIdentity\":\"ghost\","
                              "\"leaseDurationSeconds\":3,\"acquireTime\":\"2000-01-01T00:00:00.000000Z\","
                              "\"renewTime\":\"2000-01-01T00:00:00.000000Z\",\"leaseTransitions\":5}}");

    assert_int_equal(kube_create(NULL, f->c, &KUBE_LEASES, f->ns, lease), 0);
    cJSON_Delete(lease);
    int64_t start = mb_monotonic_ms();
    candidate_new(&cand, f, "candidate-a", 4000, 3000, 500);
    assert_true(itest_eventually(leads, &cand, 15000));
    /* the ghost's 3 s counted from when the candidate first saw its record */
    assert_true(mb_monotonic_ms() - start >= 3000);
    lease = lease_get(f);
    assert_string_equal(holder(lease), "candidate-a");
    assert_int_equal(json_int(-1, lease, "spec", "leaseTransitions", NULL), 6);
    assert_int_equal(json_int(-1, lease, "spec", "leaseDurationSeconds", NULL), 4);
    cJSON_Delete(lease);
    leader_elector_free(cand.le);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_leader_and_release_on_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stolen_lease_ends_leadership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_renew_time_is_waited_for_on_the_local_clock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
