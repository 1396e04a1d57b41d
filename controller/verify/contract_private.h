/*
 * Private to the contract checks (contract.h): what contract.c, which holds
 * the check table, the input validation, the requests run on the transfer
 * loop and the results, shares with contract_judge.c, which holds the
 * judges: the verdict functions that are the contract's table, pure (the
 * answers of a check in, one verdict out, no I/O).
 */
#ifndef MB_VERIFY_CONTRACT_PRIVATE_H
#define MB_VERIFY_CONTRACT_PRIVATE_H

#include "net/transfer.h"
#include "verify/batch.h"
#include "verify/contract.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* The checks, in the order of contract_check_names. */
typedef enum {
    CK_HEALTH,
    CK_READY,
    CK_DATASETS,
    CK_STAC_COLLECTIONS,
    CK_STAC_ITEMS,
    CK_EVIDENCE,
    CK_FOCUS,
    CK_LINEAGE,
    CK_PUBLIC,
    CK_PUBLISHED,
} contract_check_id;

/* One HTTP request and what came back. */
typedef struct {
    const char *method;
    char *path; /* as sent, after the base URL; for messages */
    char *url;
    char *body; /* request body (POST), NULL for GET */
    bool auth;
    batch_answer answer;
} contract_call;

/* One check: its calls (public-restriction: listing, restricted, missing). */
typedef struct {
    contract_check_id id;
    contract_call calls[3];
    size_t ncalls;
} contract_job;

/* The judgement of one check. */
typedef struct {
    bool passed;
    long status; /* the answer the verdict is about; 0: none */
    char msg[CONTRACT_MESSAGE_MAX];
} contract_verdict;

/* ---- contract_judge.c ---------------------------------------------------- */

/* How a JSON value reads in a message: "missing" (NULL), "a string", "an array", ... */
const char *contract_json_kind(const cJSON *j);

/*
 * Judges check j from its calls' answers (token already masked) into *v:
 * passed or not, the status it is about, and the message; timeout_ms is the
 * per-request timeout, for the message when a call timed out. index is what
 * published-only judges the listing against (NULL: it was not read).
 */
void contract_job_judge(contract_verdict *v, const contract_job *j, long timeout_ms, const contract_index *index);

/*
 * published-only's verdict from the listing's answer c (GET /api/v1/datasets,
 * authorized) and the published index (NULL: not read), as contract.h says.
 */
void contract_published_judge(contract_verdict *v, const contract_call *c, const contract_index *index);

#endif
