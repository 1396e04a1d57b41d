/*
 * What the governed API double answers: the endpoints of the governed API
 * contract (API.md, "Verification checks") with realistic bodies, bent by a
 * behaviour that stands for one version of the API (good, uncited,
 * restricted-leak, existence-leak, evidence-500, slow, malformed, lineage-404,
 * unpublished, error-5pct, slow-p99, or unknown for a digest the double has no
 * behaviour for). error-5pct and slow-p99 answer as good here: which request
 * of the user traffic fails or waits is the server's choice. Pure: a request
 * and a behaviour in, a status and a body out; the server (and the delay of
 * "slow") is governed_api_double.c's.
 */
#ifndef DOUBLE_ROUTES_H
#define DOUBLE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    DOUBLE_GOOD,            /* every contract endpoint passes */
    DOUBLE_UNCITED,         /* focus-ask answers without citations and without abstaining */
    DOUBLE_RESTRICTED_LEAK, /* the public listing shows the restricted dataset */
    DOUBLE_EXISTENCE_LEAK,  /* the restricted dataset answers 403 to the public, a missing one 404 */
    DOUBLE_EVIDENCE_500,    /* evidence resolve answers 500 */
    DOUBLE_SLOW,            /* good answers, each after the server's delay */
    DOUBLE_MALFORMED,       /* every body is cut in half (malformed JSON), statuses as good */
    DOUBLE_LINEAGE_404,     /* lineage is not implemented (404): still passes */
    DOUBLE_UNPUBLISHED,     /* the wells dataset is served at a version never promoted (2026-04-01.1) */
    DOUBLE_ERROR_5PCT,      /* good to the checks; 1 in 20 requests of the user traffic answers 500 (the server's) */
    DOUBLE_SLOW_P99,        /* good to the checks; 1 in 20 requests of the user traffic is slow (the server's) */
    DOUBLE_UNKNOWN,         /* no behaviour for the digest: /healthz 200, everything else 503 (fails closed) */
} double_behaviour;

/*
 * The published index that promotes the catalog the double serves (each
 * dataset at its good version, with its policy label; restricted_id is the
 * restricted dataset's id), as a ConfigMap <ns>/<name> in JSON for kubectl,
 * written as the DatasetPromotion controller writes it: labelled
 * app.kubernetes.io/managed-by=membrane, one key per datasetID holding the
 * entry {auditRef, catalog: {dcat, prov, stac}, datasetID, license,
 * policyLabel, versionID} as canonical JSON. It stands in for promotions in
 * scenarios that are not about promotion. Caller frees; NULL: out of memory.
 */
char *double_published_index(const char *ns, const char *name, const char *restricted_id);

/* "good", "uncited", ... as on the command line; 0, or -1 for an unknown name. */
int double_behaviour_parse(double_behaviour *out, const char *name);

const char *double_behaviour_name(double_behaviour b);

typedef struct {
    double_behaviour behaviour;
    const char *digest;        /* the digest the behaviour was chosen for ("" when none is known), for messages */
    const char *restricted_id; /* the dataset the API treats as restricted */
    bool token_required;       /* false: the authorized endpoints are open too */
} double_context;

typedef struct {
    const char *method;
    const char *path; /* without the query */
    const char *body; /* NUL-terminated, may be "" */
    size_t body_len;
    bool has_auth; /* an Authorization header came (the datasets then show what the caller may see) */
    bool auth_ok;  /* it carried the right bearer token (always true when none is required) */
} double_request;

typedef struct {
    int status;
    char *body; /* owned, JSON (malformed in the malformed behaviour) */
} double_response;

/* Answers req; 0, or -1 when out of memory. Free out->body. */
int double_answer(double_response *out, const double_context *ctx, const double_request *req);

/* The reason phrase of an HTTP status. */
const char *double_status_text(int status);

#endif
