/*
 * Verifying receipts: recompute every receipt of a `kubectl get -o json`
 * object (a GovernedAPIRelease's status.history, a DatasetPromotion's or
 * PolicyBundle's status.receipt, or a List of such objects) and check the
 * chain, reporting each break by the entry it is in. This is what
 * `membrane receipt verify -f FILE` runs.
 *
 * What is checked, per receipt: auditRef is well-formed (^sha256:[a-f0-9]{64}$)
 * and equals the ref recomputed from the entry and the object's identity
 * (audit/receipt.h); prevAuditRef is present and well-formed or empty; a
 * receipt that seals verification results (a release's, since they were
 * added) has a verificationDigest equal to the one recomputed from its
 * verification array, and neither member without the other. Along
 * status.history: each entry's prevAuditRef is the auditRef of the entry
 * before it; the first entry's prevAuditRef may name a receipt no longer
 * there only when the history is full (AUDIT_HISTORY_MAX entries), since
 * entries are dropped only to make room: a shorter history whose first entry
 * points back had entries removed from the front.
 *
 * What cannot be seen from the object alone: the newest entries removed
 * together (or the whole history or receipt), or an object rolled back to an
 * older status as a whole. Compare the newest auditRef with the one named in
 * the operator's log line or Event for that outcome.
 *
 * An object with no receipts yet is not a break: it is reported as a note and
 * verification succeeds.
 */
#ifndef MB_AUDIT_VERIFY_H
#define MB_AUDIT_VERIFY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    AUDIT_FINDING_OK,    /* a receipt that verifies */
    AUDIT_FINDING_BREAK, /* something in a receipt or a chain link that does not */
    AUDIT_FINDING_NOTE,  /* an object with no receipts yet, an empty List: not a break */
    AUDIT_FINDING_ERROR, /* an object that cannot be checked: unsupported kind, no identity */
} audit_finding_kind;

typedef struct {
    audit_finding_kind kind;
    char *object; /* "GovernedAPIRelease kfm/kfm-api", or where it is ("items[2]") when it has no name */
    char *path;   /* "status.history[3]", "status.receipt"; NULL when about the object as a whole */
    char *text;   /* one line: "<object>: <path> (releaseID ...): <what is wrong>" */
} audit_finding;

typedef struct {
    audit_finding *findings; /* in document order */
    size_t count;
    size_t objects;  /* objects of a supported kind looked at */
    size_t receipts; /* receipts recomputed */
    size_t breaks;   /* findings of kind AUDIT_FINDING_BREAK */
    size_t errors;   /* findings of kind AUDIT_FINDING_ERROR */
} audit_report;

/*
 * Verifies every receipt of object into out (initialized here; release it
 * with audit_report_free() whatever this returns). Breaks are data in the
 * report, not errors: returns 0 when every object could be checked (look at
 * out->breaks), MB_EINVAL when one could not (not an object, unsupported
 * kind, no metadata.uid; the others are still checked and the message is the
 * first error finding), MB_ENOMEM, or MB_ERROR when a digest could not be
 * computed (no receipt is reported broken for that).
 */
int audit_verify_object(audit_report *out, const cJSON *object);

/* Frees what the report holds and zeroes it; NULL is fine. */
void audit_report_free(audit_report *report);

/*
 * `membrane receipt verify -f path`: reads path ("-" for stdin), verifies it
 * and prints to out one line per receipt ("ok ..."), per break ("broken ..."),
 * per note ("note ...") and per object that cannot be checked ("error ..."),
 * then a summary line. Returns the exit status: 0 when every chain holds
 * (also when there are no receipts yet), 1 when any is broken (even if other
 * objects of a List could not be checked), 2 when the file cannot be read, is
 * not JSON, or holds an object that cannot be checked; the message names the
 * file and what is wrong.
 */
int audit_verify_file(const char *path, FILE *out);

/*
 * The links between environments among docs (each a parsed `kubectl get -o
 * json` document: an object or a List): for every promotedFrom entry of a
 * GovernedAPIRelease (status.promotedFrom, status.history[].promotedFrom)
 * whose upstream release (namespace/name) is among docs, the upstream's
 * status.history must hold an entry with that auditRef, outcome Succeeded and
 * the digest of the entry that names it (for status.promotedFrom, the digest
 * of the release status.releaseID names). One finding per link: ok, a break,
 * or a note when the upstream is not among docs (or its full history dropped
 * the entry). 0 or MB_ENOMEM; release out with audit_report_free().
 */
int audit_verify_promotions(audit_report *out, const cJSON *const *docs, size_t n);

/*
 * `membrane receipt verify -f FILE [-f FILE...]`: every file as
 * audit_verify_file() verifies and prints it, then the promotedFrom links
 * among all of them (audit_verify_promotions()), one line each and a summary
 * line when any was checked. Returns 1 when any chain or link is broken, else
 * 2 when a file could not be read or an object checked, else 0.
 */
int audit_verify_files(const char *const *paths, size_t n, FILE *out);

#endif
