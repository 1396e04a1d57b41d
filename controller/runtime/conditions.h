/*
 * metav1.Condition handling on a cJSON status object (the "status" member of
 * a custom resource, owned by the caller): set, get, test and remove entries
 * of status.conditions, and the kstatus helpers that keep Ready, Reconciling
 * and Stalled consistent with API.md. lastTransitionTime moves only when a
 * condition's status changes; every setter reports whether the object changed,
 * so a caller can skip a status write that would change nothing.
 *
 * "Absent or False": membrane removes Reconciling and Stalled when they do not
 * hold, and never writes them as False (Flux's convention; kstatus reads
 * absent and False alike). Ready is always present once a helper has run:
 * Unknown while reconciling, False when stalled, True when ready.
 */
#ifndef MB_RUNTIME_CONDITIONS_H
#define MB_RUNTIME_CONDITIONS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <time.h>

#define COND_TRUE "True"
#define COND_FALSE "False"
#define COND_UNKNOWN "Unknown"

#define COND_READY "Ready"
#define COND_RECONCILING "Reconciling"
#define COND_STALLED "Stalled"

/* One condition to write; the strings are borrowed. */
typedef struct {
    const char *type;              /* CamelCase, e.g. "Ready" */
    const char *status;            /* COND_TRUE, COND_FALSE or COND_UNKNOWN */
    const char *reason;            /* CamelCase, e.g. "RolledBack" */
    const char *message;           /* one human sentence; NULL writes "" */
    long long observed_generation; /* metadata.generation the condition was set from; >= 0 */
} condition;

/*
 * Sets c in status.conditions (creating the list, appending a new type,
 * updating an existing one in place and dropping duplicates of its type).
 * lastTransitionTime becomes now (RFC 3339 UTC) when the type is new or its
 * status differs, and is kept otherwise; reason, message and
 * observedGeneration are always written. *out (may be NULL) tells whether
 * anything changed. 0, MB_EINVAL (missing or malformed field; status or its
 * conditions not an object/list; nothing changed) or MB_ENOMEM.
 */
int conditions_set(bool *out, cJSON *status, const condition *c, time_t now);

/* The condition of that type in status.conditions, or NULL; borrowed from status. */
const cJSON *conditions_get(const cJSON *status, const char *type);

/* Whether the condition of that type exists with status "True". */
bool conditions_is_true(const cJSON *status, const char *type);

/* The reason of the condition of that type when it is "True", else NULL; borrowed from status. */
const char *conditions_true_reason(const cJSON *status, const char *type);

/* Removes every condition of that type; returns whether one was there. */
bool conditions_remove(cJSON *status, const char *type);

/*
 * kstatus helpers. Each writes status.observedGeneration = generation and
 * the conditions below (each with observedGeneration = generation) and
 * reports in *out (may be NULL) whether anything changed. Same errors as
 * conditions_set; on error status may be partly updated and should not be written.
 *
 *   reconciling: Reconciling=True (reason, message), Ready=Unknown (same
 *                reason and message), Stalled removed.
 *   stalled:     Stalled=True (reason, message), Ready=False (same reason
 *                and message), Reconciling removed.
 *   ready:       Ready=True (reason, message), Reconciling and Stalled removed.
 *
 * Mark reconciling only while real work is in progress (a rollout, a
 * verification of a new generation): it takes Ready away. A periodic
 * re-check of an object that stays healthy marks it ready again, which
 * changes nothing and keeps Ready's lastTransitionTime.
 */
int conditions_mark_reconciling(bool *out, cJSON *status, const char *reason, const char *message, long long generation,
                                time_t now);
int conditions_mark_stalled(bool *out, cJSON *status, const char *reason, const char *message, long long generation,
                            time_t now);
int conditions_mark_ready(bool *out, cJSON *status, const char *reason, const char *message, long long generation,
                          time_t now);

#endif
