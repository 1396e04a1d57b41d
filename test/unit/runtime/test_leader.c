/*
 * The leader election decision (client-go's tryAcquireOrRenew without I/O):
 * create when there is no Lease; wait while another holder's record keeps
 * changing or has not been still for its duration on our clock (whatever
 * its renewTime says); take over an expired or released lease with one
 * more transition and a new acquireTime; renew our own keeping both; the
 * holder's own leaseDurationSeconds decides expiry. Also the release record,
 * reading a Lease, and the option checks of the elector.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/leader.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#define ME "node-a_0123456789abcdef"
#define OTHER "node-b_fedcba9876543210"
#define T0 "2026-11-24T10:00:00.000000Z"
#define T1 "2026-11-24T10:00:05.000000Z"
#define TNOW "2026-11-24T10:00:30.123456Z"

static leader_record rec(const char *holder, long duration_s, const char *acquire, const char *renew, long transitions)
{
    leader_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.holder, sizeof(r.holder), "%s", holder);
    r.duration_s = duration_s;
    snprintf(r.acquire_time, sizeof(r.acquire_time), "%s", acquire);
    snprintf(r.renew_time, sizeof(r.renew_time), "%s", renew);
    r.transitions = transitions;
    return r;
}

static void test_no_lease_is_created(void **state)
{
    leader_observation obs = {0};
    leader_record out;
    (void)state;

    assert_int_equal(leader_decide(&out, &obs, NULL, ME, 15, 1000, TNOW), LEADER_CREATE);
    assert_string_equal(out.holder, ME);
    assert_int_equal(out.duration_s, 15);
    assert_string_equal(out.acquire_time, TNOW);
    assert_string_equal(out.renew_time, TNOW);
    assert_int_equal(out.transitions, 0);
}

static void test_another_holder_is_waited_for_on_our_clock(void **state)
{
    leader_observation obs = {0};
    leader_record out;
    /* renewTime long ago by the wall clock: it does not matter, only when we saw it change */
    leader_record held = rec(OTHER, 15, "2000-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.000000Z", 4);
    (void)state;

    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 100000, TNOW), LEADER_WAIT);
    assert_true(obs.seen);
    assert_int_equal(obs.changed_ms, 100000);
    assert_string_equal(obs.record.holder, OTHER);
    /* unchanged, 14.999 s later: still valid */
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 114999, TNOW), LEADER_WAIT);
    assert_int_equal(obs.changed_ms, 100000);
    /* 15 s after we saw it change: expired, taken over */
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 115000, TNOW), LEADER_UPDATE);
    assert_string_equal(out.holder, ME);
    assert_int_equal(out.transitions, 5);
    assert_string_equal(out.acquire_time, TNOW);
    assert_string_equal(out.renew_time, TNOW);
    assert_int_equal(out.duration_s, 15);
}

static void test_a_renewing_holder_keeps_the_lease(void **state)
{
    leader_observation obs = {0};
    leader_record out;
    leader_record held = rec(OTHER, 15, T0, T0, 1);
    (void)state;

    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 0, TNOW), LEADER_WAIT);
    /* the holder renews at 10 s: the clock starts again from there */
    held = rec(OTHER, 15, T0, T1, 1);
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 10000, TNOW), LEADER_WAIT);
    assert_int_equal(obs.changed_ms, 10000);
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 24999, TNOW), LEADER_WAIT);
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 25000, TNOW), LEADER_UPDATE);
}

static void test_the_holders_duration_decides(void **state)
{
    leader_observation obs = {0};
    leader_record out;
    leader_record held = rec(OTHER, 60, T0, T0, 0);
    (void)state;

    /* our own duration (15 s) is not what the holder promised (60 s) */
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 0, TNOW), LEADER_WAIT);
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 59999, TNOW), LEADER_WAIT);
    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 60000, TNOW), LEADER_UPDATE);
    assert_int_equal(out.duration_s, 15);
}

static void test_a_released_lease_is_taken_at_once(void **state)
{
    leader_observation obs = {0};
    leader_record out, released;
    leader_record held = rec(OTHER, 15, T0, T1, 3);
    (void)state;

    leader_release_record(&released, &held, T1);
    assert_string_equal(released.holder, "");
    assert_int_equal(released.duration_s, 1);
    assert_int_equal(released.transitions, 3);
    assert_string_equal(released.renew_time, T1);
    assert_int_equal(leader_decide(&out, &obs, &released, ME, 15, 5000, TNOW), LEADER_UPDATE);
    assert_string_equal(out.holder, ME);
    assert_int_equal(out.transitions, 4);
    assert_string_equal(out.acquire_time, TNOW);
}

static void test_our_own_lease_is_renewed(void **state)
{
    leader_observation obs = {0};
    leader_record out;
    leader_record held = rec(ME, 15, T0, T1, 7);
    (void)state;

    assert_int_equal(leader_decide(&out, &obs, &held, ME, 15, 0, TNOW), LEADER_UPDATE);
    assert_string_equal(out.holder, ME);
    assert_string_equal(out.acquire_time, T0); /* kept */
    assert_string_equal(out.renew_time, TNOW);
    assert_int_equal(out.transitions, 7); /* kept */
}

static void test_validity(void **state)
{
    leader_observation obs = {0};
    (void)state;
    assert_false(leader_lease_valid(&obs, 0));
    obs.seen = true;
    obs.record = rec(OTHER, 2, T0, T0, 0);
    obs.changed_ms = 1000;
    assert_true(leader_lease_valid(&obs, 2999));
    assert_false(leader_lease_valid(&obs, 3000));
}

static void test_record_from_lease(void **state)
{
    leader_record r;
    cJSON *lease = cJSON_Parse("{\"metadata\":{\"name\":\"membrane-leader\"},\"spec\":{\"holderIdentity\":\"" OTHER
                               "\",\"leaseDurationSeconds\":15,\"acquireTime\":\"" T0 "\",\"renewTime\":\"" T1
                               "\",\"leaseTransitions\":2}}");
    cJSON *empty = cJSON_Parse("{\"metadata\":{\"name\":\"membrane-leader\"},\"spec\":{}}");
    (void)state;

    leader_record_from_lease(&r, lease);
    assert_string_equal(r.holder, OTHER);
    assert_int_equal(r.duration_s, 15);
    assert_string_equal(r.acquire_time, T0);
    assert_string_equal(r.renew_time, T1);
    assert_int_equal(r.transitions, 2);
    leader_record_from_lease(&r, empty);
    assert_string_equal(r.holder, "");
    assert_int_equal(r.duration_s, 0);
    assert_int_equal(r.transitions, 0);
    /* an empty spec is a lease nobody holds: taken at once */
    leader_observation obs = {0};
    leader_record out;
    assert_int_equal(leader_decide(&out, &obs, &r, ME, 15, 0, TNOW), LEADER_UPDATE);
    assert_int_equal(out.transitions, 1);
    cJSON_Delete(lease);
    cJSON_Delete(empty);
}

static void test_elector_options(void **state)
{
    leader_elector *le = NULL;
    kube_client *fake = (kube_client *)&le; /* never used: new does no I/O */
    (void)state;

    assert_int_equal(leader_elector_new(&le, &(leader_elector_opts){.client = fake}), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "namespace"));
    assert_int_equal(leader_elector_new(&le, &(leader_elector_opts){.client = fake,
                                                                    .namespace = "ns",
                                                                    .lease_duration_ms = 10000}),
                     MB_EINVAL);
    assert_int_equal(leader_elector_new(&le, &(leader_elector_opts){.client = fake,
                                                                    .namespace = "ns",
                                                                    .renew_deadline_ms = 2400}),
                     MB_EINVAL);
    assert_null(le);
    assert_int_equal(leader_elector_new(&le, &(leader_elector_opts){.client = fake, .namespace = "ns"}), 0);
    const char *id = leader_elector_identity(le);
    const char *sep = strrchr(id, '_');
    assert_non_null(sep);
    assert_int_equal(strlen(sep + 1), 16);
    assert_int_equal(strspn(sep + 1, "0123456789abcdef"), 16);
    assert_false(leader_elector_is_leader(le));
    leader_elector_free(le); /* never started: nothing to stop or release */

    leader_elector *le2 = NULL;
    assert_int_equal(leader_elector_new(&le, &(leader_elector_opts){.client = fake, .namespace = "ns"}), 0);
    assert_int_equal(leader_elector_new(&le2, &(leader_elector_opts){.client = fake, .namespace = "ns"}), 0);
    assert_string_not_equal(leader_elector_identity(le), leader_elector_identity(le2));
    leader_elector_free(le);
    leader_elector_free(le2);
}

/* --watch-label-selector: each shard its own Lease, named by the selector's sha256. */
static void test_lease_name_of_a_shard(void **state)
{
    (void)state;
    char name[LEADER_LEASE_NAME_MAX];
    leader_lease_name(name, NULL);
    assert_string_equal(name, "membrane-leader");
    leader_lease_name(name, "");
    assert_string_equal(name, "membrane-leader");
    leader_lease_name(name, "shard=a"); /* printf shard=a | sha256sum: 3d8dfb26... */
    assert_string_equal(name, "membrane-leader-3d8dfb26");
    char other[LEADER_LEASE_NAME_MAX];
    leader_lease_name(other, "shard=b");
    assert_string_not_equal(name, other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_name_of_a_shard),
        cmocka_unit_test(test_no_lease_is_created),
        cmocka_unit_test(test_another_holder_is_waited_for_on_our_clock),
        cmocka_unit_test(test_a_renewing_holder_keeps_the_lease),
        cmocka_unit_test(test_the_holders_duration_decides),
        cmocka_unit_test(test_a_released_lease_is_taken_at_once),
        cmocka_unit_test(test_our_own_lease_is_renewed),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_record_from_lease),
        cmocka_unit_test(test_elector_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
