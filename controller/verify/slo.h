/*
 * The slo check of a GovernedAPIRelease (API.md, "Verification checks", row
 * slo): each objective of spec.verification.slo is a PromQL query sent to
 * Prometheus's HTTP API (GET <prometheusURL>/api/v1/query?query=...) on the
 * shared transfer loop (net/transfer.h), with {{digest}} replaced by the
 * digest the Deployment runs (the new one while Verifying and Observing, the
 * rollback target after a rollback) and {{window}} by the window
 * ("300s"). Every objective must hold: the answer is `status: success` with
 * an instant vector of exactly one sample whose value is a finite number
 * `<= max`. The check reports one result, named slo, whose trigger on
 * failure is SLOBreach.
 *
 * A failure says which of two kinds it is. An objective is *breached* when
 * Prometheus answered one finite sample above max. It *cannot be judged*
 * (fails closed) when Prometheus cannot be reached or answered an error, a
 * body that is not Prometheus's JSON, an empty vector (no series matched),
 * several series, NaN or an infinity, or a scalar, matrix or string instead
 * of an instant vector. The message names every objective, failed ones
 * first, each with its substituted query, at most CONTRACT_MESSAGE_MAX
 * bytes.
 */
#ifndef MB_VERIFY_SLO_H
#define MB_VERIFY_SLO_H

#include "net/transfer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define SLO_CHECK_NAME "slo"
#define SLO_TRIGGER "SLOBreach"
#define SLO_OBJECTIVES_MAX 16
#define SLO_WINDOW_SECONDS_DEFAULT 300
#define SLO_WINDOW_SECONDS_MAX 2592000 /* 30 days */
#define SLO_QUERY_MAX 4096             /* bytes of a query as written, before substitution */
#define SLO_BODY_MAX (1L * 1024 * 1024)
#define SLO_VERDICT_MAX 512

/*
 * Whether spec.verification.slo (slo) can be run: an object with an http://
 * or https:// prometheusURL, windowSeconds (when set) an integer between 1 and
 * SLO_WINDOW_SECONDS_MAX, authSecretRef (when set) with a name and a key,
 * and 1 to SLO_OBJECTIVES_MAX objectives, each with a unique non-empty name,
 * a non-empty query whose only placeholders are {{digest}} and {{window}},
 * and a max that is a finite number. false with why (a sentence naming the
 * field and what to fix) otherwise. Pure.
 */
bool slo_spec_valid(char *why, size_t len, const cJSON *slo);

/* windowSeconds of slo, or SLO_WINDOW_SECONDS_DEFAULT when unset. */
long long slo_window_seconds(const cJSON *slo);

/*
 * query with every {{digest}} replaced by digest and every {{window}} by
 * "<window_seconds>s", into *out (caller frees). MB_EINVAL naming the
 * placeholder when query holds another {{...}}; MB_ENOMEM.
 */
int slo_query_expand(char **out, const char *query, const char *digest, long long window_seconds);

typedef enum {
    SLO_MET,      /* one finite sample <= max */
    SLO_BREACHED, /* one finite sample > max */
    SLO_UNJUDGED, /* no usable answer: the objective cannot be judged (the check fails closed) */
} slo_state;

typedef struct {
    slo_state state;
    double value; /* the sample, when state is SLO_MET or SLO_BREACHED */
    char msg[SLO_VERDICT_MAX];
} slo_verdict;

/*
 * Judges Prometheus's answer to one instant query (HTTP status, body of
 * len bytes, NUL-terminated) against max. Pure: the message says what the
 * value was or why there is none ("an empty vector: no series matched the
 * query", "2 series", "NaN", "a scalar", "Prometheus answered 400:
 * bad_data: ...").
 */
void slo_answer_judge(slo_verdict *out, long status, const char *body, size_t len, double max);

/* What one run needs; every pointer is borrowed for slo_check_start (which copies it). */
typedef struct {
    const cJSON *slo;       /* spec.verification.slo */
    const char *digest;     /* what {{digest}} stands for */
    const char *token;      /* bearer token for Prometheus (slo.authSecretRef), NULL: none; never logged */
    const char *release_id; /* X-Request-ID is <release_id>-slo */
    long timeout_ms;        /* per query; 0: 10000 */
} slo_input;

typedef struct slo_run slo_run;
typedef void (*slo_done_fn)(void *ctx);

/*
 * Starts every objective's query on loop and returns; done(ctx) is called
 * once, on the loop thread, after the last query has ended (or by
 * slo_check_start itself when all ended before it returned), and may free
 * the run. MB_EINVAL with the message of slo_spec_valid (or naming the
 * digest or token) when in cannot be run; MB_ENOMEM; MB_ERROR when the loop
 * has stopped.
 */
int slo_check_start(slo_run **out, net_loop *loop, const slo_input *in, slo_done_fn done, void *ctx);

bool slo_run_finished(slo_run *run);

/* Ends the queries still running (their objectives cannot be judged: cancelled); any thread. */
void slo_run_cancel(slo_run *run);

/*
 * The check's result object {name: slo, passed, httpStatus, latencyMs,
 * trigger, message}, waiting for the end of the run if need be.
 */
int slo_run_result(cJSON **out, slo_run *run);

/* Cancels, waits for the callbacks and frees; on the loop thread only once finished. Accepts NULL. */
void slo_run_free(slo_run *run);

/* A failed slo result with message why (the check could not run): {name, passed: false, latencyMs 0, trigger, message}. */
cJSON *slo_result_failed(const char *why);

#endif
