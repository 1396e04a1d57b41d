/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * semantics (leaderelection.LeaderElector with a LeaseLock):
 *
 * - A candidate takes the Lease when there is none, when it is released
 *   (holderIdentity empty), or when its record has not changed for
 *   leaseDurationSeconds (the holder's value) as measured on this process's
 *   monotonic clock from the moment this candidate saw the record change;
 *   renewTime is never compared with the local wall clock, so clock skew
 *   between nodes does not matter. Taking it over from another holder
 *   increments leaseTransitions and sets acquireTime.
 * - Every write is an update with the resourceVersion it read (or a create),
 *   so two candidates cannot both win the same round.
 * - A candidate tries every retry period (jittered up to 2.2 times, as
 *   client-go's JitterFactor 1.2), the leader renews every retry period;
 *   when no renew has succeeded for the renew deadline the leader gives up
 *   at once (on_stopped_leading), even while a request is still hanging, and
 *   does not try again: the process should exit and come back as a candidate.
 * - On leader_elector_stop a leader releases the Lease (holderIdentity "",
 *   leaseDurationSeconds 1), so a standby takes over at its next try instead
 *   of waiting for the lease to expire.
 *
 * The decision itself, leader_decide(), is pure and unit-tested.
 */
#ifndef MB_RUNTIME_LEADER_H
#define MB_RUNTIME_LEADER_H

#include "kube/client.h"

#include <stdbool.h>
#include <stdint.h>

#define LEADER_IDENTITY_MAX 256
#define LEADER_TIME_MAX 40 /* "2026-11-24T05:38:52.238000Z" and NUL */

/* The election record in a Lease's spec. */
typedef struct {
    char holder[LEADER_IDENTITY_MAX];   /* holderIdentity; "" when nobody holds it */
    long duration_s;                    /* leaseDurationSeconds */
    char acquire_time[LEADER_TIME_MAX]; /* acquireTime (MicroTime text), "" when absent */
    char renew_time[LEADER_TIME_MAX];   /* renewTime */
    long transitions;                   /* leaseTransitions */
} leader_record;

/* What a candidate remembers between tries: the record it last saw and when it saw it change. */
typedef struct {
    bool seen;
    leader_record record;
    int64_t changed_ms; /* monotonic clock */
} leader_observation;

typedef enum {
    LEADER_WAIT,   /* another holder's lease is still valid: write nothing */
    LEADER_CREATE, /* there is no Lease: create it with the record */
    LEADER_UPDATE, /* write the record over the Lease, with the resourceVersion read */
} leader_action;

/*
 * One round of client-go's tryAcquireOrRenew, without I/O. current is the
 * Lease's record (NULL when there is no Lease); obs is updated when current
 * differs from what was seen before (changed_ms = now_ms). When the answer is
 * CREATE or UPDATE, *out is the record to write: holder identity, duration_s,
 * renewTime now_time, and acquireTime and leaseTransitions kept when identity
 * already holds the lease, else now_time and one more transition (none for
 * a new Lease). After the write succeeds the caller records *out in obs.
 */
leader_action leader_decide(leader_record *out, leader_observation *obs, const leader_record *current,
                            const char *identity, long duration_s, int64_t now_ms, const char *now_time);

/* Whether the lease in obs is still valid at now_ms: seen, and changed less than its duration ago. */
bool leader_lease_valid(const leader_observation *obs, int64_t now_ms);

/* The record that releases a lease held as held: no holder, 1 s, times now_time, transitions kept. */
void leader_release_record(leader_record *out, const leader_record *held, const char *now_time);

/* Reads a Lease's spec into out (absent fields are empty or 0). */
void leader_record_from_lease(leader_record *out, const cJSON *lease);

typedef struct leader_elector leader_elector;

typedef struct {
    kube_client *client;    /* borrowed; must outlive the elector */
    const char *namespace;  /* where the Lease lives; required */
    const char *name;       /* NULL: "membrane-leader" */
    const char *identity;   /* NULL: "<hostname>_<16 random hex digits>" */
    long lease_duration_ms; /* 0: 15000; written in whole seconds, rounded up */
    long renew_deadline_ms; /* 0: 10000 */
    long retry_period_ms;   /* 0: 2000 */
    /*
     * Called once this process holds the Lease (on the elector's thread), and
     * once it has lost it (on its watchdog thread), never on
     * leader_elector_stop. Both must return quickly: a renew waits for
     * on_started_leading. May be NULL.
     */
    void (*on_started_leading)(void *ctx);
    void (*on_stopped_leading)(void *ctx);
    void *ctx;
} leader_elector_opts;

/*
 * Checks the options (lease duration > renew deadline > 1.2 x retry period,
 * as client-go requires) and copies them. 0, MB_EINVAL or MB_ENOMEM.
 */
int leader_elector_new(leader_elector **out, const leader_elector_opts *opts);

/* Starts trying to become the leader. MB_EINVAL when already started, MB_ERROR when a thread cannot start. */
int leader_elector_start(leader_elector *le);

/* True while this process is the leader (the membrane_is_leader gauge follows it). */
bool leader_elector_is_leader(leader_elector *le);

/* Borrowed: this candidate's holderIdentity. */
const char *leader_elector_identity(const leader_elector *le);

/*
 * Stops trying and renewing (waits for a request in flight), and when this
 * process holds the Lease releases it. Call it after the work that needs
 * leadership has stopped. Idempotent.
 */
void leader_elector_stop(leader_elector *le);

/*
 * The Lease name for a --watch-label-selector: "membrane-leader" without one
 * (NULL or ""), else "membrane-leader-" and the first 8 hex digits of
 * sha256(selector), so that operators sharded by disjoint selectors each hold
 * their own Lease. out has room for LEADER_LEASE_NAME_MAX bytes.
 */
#define LEADER_LEASE_NAME_MAX 32
void leader_lease_name(char *out, const char *selector);

/* Stops (as leader_elector_stop) and frees. Accepts NULL. */
void leader_elector_free(leader_elector *le);

#endif
