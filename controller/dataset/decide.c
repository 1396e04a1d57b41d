/*
 * DatasetPromotion: the pure decision (dataset/decide.h). One pass from the
 * observed promotion, index and transfers to the status and the next action.
 */
#include "dataset/decide.h"
#include "util/text.h"
#include "audit/canonical.h"
#include "audit/receipt.h"
#include "dataset/gates.h"
#include "dataset/index.h"
#include "runtime/conditions.h"
#include "util/error.h"
#include "util/json.h"
#include "util/timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 1024
#define COND_GATES "GatesPassed"
#define COND_PUBLISHED "Published"

typedef struct {
    const dataset_observed *obs;
    dataset_plan *plan;
    cJSON *st;        /* the new status (owned until handed to the plan) */
    const cJSON *old; /* the status as read, or NULL */
    const cJSON *spec;
    long long gen;
    const char *ns, *name, *id, *version;
} ctx;

/* ---- helpers ------------------------------------------------------------- */

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

#define add_event(c, ...) event_plan((c)->plan->events, &(c)->plan->n_events, DATASET_MAX_EVENTS, __VA_ARGS__)

static int cond(ctx *c, const char *type, const char *status, const char *reason, const char *message)
{
    condition cd = {type, status, reason, message, c->gen};
    return conditions_set(NULL, c->st, &cd, c->obs->now);
}

static int set_phase(ctx *c, const char *phase)
{
    c->plan->phase = phase;
    return json_set_str(c->st, "phase", phase);
}

static bool this_gen(const ctx *c)
{
    return json_int(-1, c->old, "observedGeneration", NULL) == c->gen;
}

long dataset_backoff_ms(unsigned attempts)
{
    long ms = DATASET_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempts && ms < DATASET_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < DATASET_BACKOFF_MAX_MS ? ms : DATASET_BACKOFF_MAX_MS;
}

bool dataset_index_name(char out[254], const cJSON *promotion)
{
    const char *n = json_str(promotion, "spec", "publish", "indexConfigMap", NULL);
    int len = snprintf(out, 254, "%s", n && *n ? n : DATASET_INDEX_DEFAULT);
    return len > 0 && len < 254;
}

const char *dataset_published_ref(const cJSON *promotion)
{
    const cJSON *r = json_get(promotion, "status", "receipt", NULL);
    return same(json_str(r, "outcome", NULL), "Promoted") ? json_str(r, "auditRef", NULL) : NULL;
}

/* The index's entry text for the dataset, or NULL. Borrowed. */
static const char *index_current(const ctx *c)
{
    return c->id ? json_str(c->obs->index, "data", c->id, NULL) : NULL;
}

/* cJSON_Parse, where text that parses a second time was a failed allocation (ENOMEM). NULL text: NULL, 0. */
static int parse(cJSON **out, const char *text)
{
    cJSON *again = NULL;
    *out = NULL;
    if (!text || (*out = cJSON_Parse(text)))
        return 0;
    if ((again = cJSON_Parse(text))) {
        cJSON_Delete(again);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return 0;
}

/* Whether the index holds an entry for the dataset sealed by ref: 1, 0 or MB_ENOMEM. */
static int index_holds_ref(const ctx *c, const char *ref)
{
    cJSON *e = NULL;
    int err = ref ? parse(&e, index_current(c)) : 0;
    if (err < 0)
        return err;
    bool yes = e && same(json_str(e, "auditRef", NULL), ref);
    cJSON_Delete(e);
    return yes;
}

static int gates_status(ctx *c, const dataset_gate g[DATASET_NGATES])
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (int i = 0; i < DATASET_NGATES; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o) || !cJSON_AddStringToObject(o, "name", g[i].name) ||
            !cJSON_AddBoolToObject(o, "passed", g[i].state == DATASET_GATE_PASSED) ||
            !cJSON_AddStringToObject(o, "message", g[i].message)) {
            if (o && !o->prev)
                cJSON_Delete(o);
            cJSON_Delete(arr);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    return json_set_item(c->st, "gates", arr);
}

/* ---- outcomes ------------------------------------------------------------ */

static int progress(ctx *c, const char *reason, const char *message)
{
    int err;
    if ((err = set_phase(c, "Validating")) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, reason, message, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_PUBLISHED, COND_FALSE, "NotPublished", "the version is not in the index yet")) < 0)
        return err;
    return 0;
}

static bool fresh_blocked(const ctx *c)
{
    return !same(json_str(c->old, "phase", NULL), "Blocked") || !this_gen(c);
}

/* Blocked, Stalled=True: only a spec (or source) change helps. */
static int stalled(ctx *c, const char *reason, const char *message)
{
    int err;
    bool fresh = fresh_blocked(c) || !same(conditions_true_reason(c->old, COND_STALLED), reason);
    if ((err = set_phase(c, "Blocked")) < 0 ||
        (err = conditions_mark_stalled(NULL, c->st, reason, message, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_PUBLISHED, COND_FALSE, "NotPublished", "the version is not in the index")) < 0)
        return err;
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "progress");
    c->plan->drop_work = true;
    c->plan->requeue_ms = 0;
    if (fresh_blocked(c))
        c->plan->outcome = "Blocked";
    return fresh ? add_event(c, "Warning", reason, "%s", message) : 0;
}

/* Blocked, Reconciling=True: a source could not be reached; tried again after a backoff. */
static int unavailable(ctx *c, const char *message)
{
    int err;
    bool fresh = !same(conditions_true_reason(c->old, COND_RECONCILING), "SourceUnavailable");
    if (fresh_blocked(c))
        c->plan->outcome = "Blocked";
    if ((err = set_phase(c, "Blocked")) < 0 ||
        (err = conditions_mark_reconciling(NULL, c->st, "SourceUnavailable", message, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_PUBLISHED, COND_FALSE, "NotPublished", "the version is not in the index")) < 0)
        return err;
    return fresh ? add_event(c, "Warning", "SourceUnavailable", "%s", message) : 0;
}

static int seal(ctx *c, cJSON *e)
{
    int err;
    if ((err = audit_receipt_set(c->st, e, c->obs->promotion)) < 0)
        return err;
    c->plan->receipt = json_get(c->st, "receipt", NULL);
    return 0;
}

/* The index entry of this spec sealed by ref into plan->entry. */
static int make_entry(ctx *c, const char *ref, char *msg)
{
    char m[DATASET_MSG_MAX];
    int err;
    free(c->plan->entry);
    c->plan->entry = NULL;
    if ((err = dataset_index_entry(&c->plan->entry, c->spec, ref, m)) < 0)
        snprintf(msg, MSG_MAX, "%s", m);
    return err;
}

/*
 * What publishing entry would replace in the index: *replaced (owned, NULL: nothing). Our own earlier entry of
 * this version (sealed by published) may be replaced. 0; 1 when the index refuses (msg, *reason); MB_ENOMEM.
 */
static int would_replace(char **replaced, ctx *c, const char *entry, const char *published, const char **reason,
                         char *msg)
{
    const cJSON *data = json_get(c->obs->index, "data", NULL);
    cJSON *next = NULL, *base = NULL;
    char *removed = NULL, m[DATASET_MSG_MAX];
    int err;
    *replaced = NULL;
    int held = published ? index_holds_ref(c, published) : 0;
    if ((err = held) < 0)
        goto done;
    if (held) {
        if ((err = dataset_index_remove(&base, &removed, data, c->id, c->version, m)) < 0)
            goto refused;
        data = base;
    }
    if ((err = dataset_index_update(&next, replaced, data, entry, m)) < 0)
        goto refused;
    if (removed && !*replaced) {
        *replaced = removed;
        removed = NULL;
    }
    goto done;
refused:
    if (err == MB_ENOMEM)
        goto done;
    snprintf(msg, MSG_MAX, "%s", m);
    *reason = strstr(m, "limit") ? "IndexFull" : "IndexConflict";
    err = 1;
done:
    free(removed);
    cJSON_Delete(base);
    cJSON_Delete(next);
    return err;
}

static int promoted(ctx *c)
{
    char msg[MSG_MAX];
    int err;
    bool fresh = !same(json_str(c->old, "phase", NULL), "Promoted") || !this_gen(c);
    snprintf(msg, sizeof(msg), "version %s of %s passed every gate and is published in ConfigMap %s", c->version, c->id,
             c->plan->index);
    if ((err = set_phase(c, "Promoted")) < 0 ||
        (err = conditions_mark_ready(NULL, c->st, "Promoted", msg, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_GATES, COND_TRUE, "AllPassed", "every gate passed")) < 0 ||
        (err = cond(c, COND_PUBLISHED, COND_TRUE, "Published", msg)) < 0)
        return err;
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "progress");
    c->plan->drop_work = true;
    c->plan->requeue_ms = DATASET_RESYNC_MS;
    if (!fresh)
        return 0;
    c->plan->outcome = "Promoted";
    return add_event(c, "Normal", "Promoted", "%s; receipt %s", msg,
                     json_str(c->st, "receipt", "auditRef", NULL) ?: "");
}

/* ---- the receipt ----------------------------------------------------------- */

/* {artifacts, documents} of the sealed inputs, and their digest. */
static int add_inputs(cJSON *e, ctx *c)
{
    const dataset_work *w = &c->obs->work;
    static const char *const docs[DATASET_NDOCS] = {"dcat", "stac", "prov"};
    cJSON *arts = cJSON_AddArrayToObject(e, "artifacts"), *d = cJSON_AddObjectToObject(e, "documents"), *in = NULL;
    const cJSON *a;
    char ref[AUDIT_REF_SIZE], hex[80];
    int err = 0, i = 0;
    if (!arts || !d)
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(a, json_get(c->spec, "artifacts", NULL)) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arts, o) ||
            !cJSON_AddStringToObject(o, "name", json_str(a, "name", NULL) ?: "") ||
            !cJSON_AddStringToObject(o, "digest", json_str(a, "digest", NULL) ?: "") ||
            !cJSON_AddNumberToObject(o, "sizeBytes",
                                     (double)(w->artifacts && (size_t)i < w->nartifacts ? w->artifacts[i].bytes : 0))) {
            if (o && !o->prev && arts->child != o)
                cJSON_Delete(o);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        i++;
    }
    for (int k = 0; k < DATASET_NDOCS; k++) {
        snprintf(hex, sizeof(hex), "sha256:%s", w->docs[k].sha256_hex ? w->docs[k].sha256_hex : "");
        if (!cJSON_AddStringToObject(d, docs[k], hex))
            return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (!(in = cJSON_CreateObject()) || json_set_item(in, "artifacts", cJSON_Duplicate(arts, true)) < 0 ||
        json_set_item(in, "documents", cJSON_Duplicate(d, true)) < 0) {
        cJSON_Delete(in);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    err = audit_ref(ref, in);
    cJSON_Delete(in);
    if (err < 0)
        return err;
    return cJSON_AddStringToObject(e, "inputsDigest", ref) ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
}

/* The entry's members but auditRef, as the receipt seals them. */
static cJSON *entry_fields(const char *entry)
{
    cJSON *e = cJSON_Parse(entry);
    if (e)
        cJSON_DeleteItemFromObjectCaseSensitive(e, "auditRef");
    return e;
}

/*
 * The Promoted receipt: from the gates just judged, or (reseal: the replaced entry changed) from the receipt sealed
 * before. Sets the status's receipt and plan->entry.
 */
static int seal_promoted(ctx *c, const cJSON *from, char *msg, const char **reason, bool *refused)
{
    const char *published = dataset_published_ref(c->obs->promotion);
    char at[32], *replaced = NULL, *probe = NULL;
    cJSON *e = NULL;
    int err;
    *refused = false;
    /* the entry's shape (its auditRef stands in) tells what it would replace */
    if ((err = dataset_index_entry(&probe, c->spec,
                                   "sha256:0000000000000000000000000000000000000000000000000000000000000000", msg)) < 0)
        goto fail;
    if ((err = would_replace(&replaced, c, probe, published, reason, msg)) != 0)
        goto fail;
    if (!(e = cJSON_CreateObject()) || timefmt_format(at, sizeof(at), c->obs->now) < 0 ||
        !cJSON_AddStringToObject(e, "outcome", "Promoted") ||
        !cJSON_AddNumberToObject(e, "generation", (double)c->gen) || !cJSON_AddStringToObject(e, "promotedAt", at) ||
        !cJSON_AddStringToObject(e, "datasetID", c->id) || !cJSON_AddStringToObject(e, "versionID", c->version) ||
        !cJSON_AddStringToObject(e, "indexConfigMap", c->plan->index) ||
        json_set_item(e, "indexEntry", entry_fields(probe)) < 0 ||
        (replaced && !cJSON_AddStringToObject(e, "replacedEntry", replaced)))
        goto nomem;
    if (from) {
        static const char *const keep[] = {"gates", "artifacts", "documents", "inputsDigest"};
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
            const cJSON *v = json_get(from, keep[i], NULL);
            if (v && json_set_item(e, keep[i], cJSON_Duplicate(v, true)) < 0)
                goto nomem;
        }
    } else if ((err = json_set_item(e, "gates", cJSON_Duplicate(json_get(c->st, "gates", NULL), true))) < 0 ||
               (err = add_inputs(e, c)) < 0)
        goto fail;
    err = seal(c, e);
    e = NULL;
    if (err < 0)
        goto fail;
    if ((err = make_entry(c, json_str(c->plan->receipt, "auditRef", NULL), msg)) < 0)
        goto fail;
    free(c->plan->expect_replaced);
    c->plan->expect_replaced = replaced;
    replaced = NULL;
    goto done;
nomem:
    err = mb_error_set(MB_ENOMEM, "out of memory");
fail:
    if (err == 1) {
        *refused = true;
        err = 0;
    } else if (err == MB_EINVAL) {
        *refused = true;
        *reason = "InvalidSpec";
        err = 0;
    }
done:
    cJSON_Delete(e);
    free(replaced);
    free(probe);
    return err;
}

/* ---- the steps ------------------------------------------------------------- */

static const char *spec_problem(ctx *c, char *msg)
{
    const cJSON *arts = json_get(c->spec, "artifacts", NULL), *a;
    int n = cJSON_GetArraySize(arts), i = 0;
    static const char *const docs[] = {"dcat", "stac", "prov"};
    if (!c->id || !*c->id)
        return snprintf(msg, MSG_MAX, "spec.datasetID is empty: set the dataset's identifier"), msg;
    if (!c->version || !*c->version)
        return snprintf(msg, MSG_MAX, "spec.versionID is empty: set the dataset version's identifier"), msg;
    if (n < 1 || n > DATASET_MAX_ARTIFACTS)
        return snprintf(msg, MSG_MAX, "spec.artifacts must list 1 to %d artifacts", DATASET_MAX_ARTIFACTS), msg;
    cJSON_ArrayForEach(a, arts) {
        const char *url = json_str(a, "url", NULL), *d = json_str(a, "digest", NULL);
        const cJSON *size = json_get(a, "sizeBytes", NULL);
        if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
            return snprintf(msg, MSG_MAX, "spec.artifacts[%d].url must be an http:// or https:// URL", i), msg;
        if (!mb_sha256_digest_valid(d))
            return snprintf(msg, MSG_MAX, "spec.artifacts[%d].digest must be sha256: and 64 lowercase hex digits", i),
                   msg;
        if (size && (!cJSON_IsNumber(size) || size->valuedouble < 0))
            return snprintf(msg, MSG_MAX, "spec.artifacts[%d].sizeBytes must be a number of bytes, 0 or more", i), msg;
        i++;
    }
    for (int k = 0; k < 3; k++) {
        const char *url = json_str(c->spec, "catalog", docs[k], "url", NULL);
        if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
            return snprintf(msg, MSG_MAX, "spec.catalog.%s.url must be an http:// or https:// URL", docs[k]), msg;
    }
    if (!dataset_index_name(c->plan->index, c->obs->promotion))
        return snprintf(msg, MSG_MAX, "spec.publish.indexConfigMap is too long"), msg;
    return NULL;
}

/* Whether no transfer of this generation has started (the work was dropped, or the process restarted). */
static bool work_empty(const dataset_work *w)
{
    if (w->artifacts || w->links_listed)
        return false;
    for (int k = 0; k < DATASET_NDOCS; k++)
        if (w->docs[k].state != DATASET_ITEM_NONE)
            return false;
    return true;
}

/* status.progress while checksums runs, rewritten at most every DATASET_PROGRESS_MS. */
static int set_progress(ctx *c)
{
    const dataset_work *w = &c->obs->work;
    const cJSON *old = json_get(c->old, "progress", NULL);
    long long hashed = 0, total = 0;
    time_t at = 0;
    char ts[32];
    if (old && timefmt_parse(&at, json_str(old, "updatedAt", NULL) ?: "") == 0 &&
        (long long)(c->obs->now - at) * 1000 < DATASET_PROGRESS_MS)
        return 0; /* kept as it is */
    for (size_t i = 0; w->artifacts && i < w->nartifacts; i++) {
        hashed += w->artifacts[i].bytes;
        if (w->artifacts[i].total > 0)
            total += w->artifacts[i].total;
    }
    cJSON *p = cJSON_CreateObject();
    if (!p || timefmt_format(ts, sizeof(ts), c->obs->now) < 0 ||
        !cJSON_AddNumberToObject(p, "bytesHashed", (double)hashed) ||
        !cJSON_AddNumberToObject(p, "bytesTotal", (double)total) || !cJSON_AddStringToObject(p, "updatedAt", ts)) {
        cJSON_Delete(p);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return json_set_item(c->st, "progress", p);
}

static bool any_item(const dataset_work *w, dataset_item_state s)
{
    for (size_t i = 0; w->artifacts && i < w->nartifacts; i++)
        if (w->artifacts[i].state == s)
            return true;
    for (int k = 0; k < DATASET_NDOCS; k++)
        if (w->docs[k].state == s)
            return true;
    for (size_t i = 0; w->links && i < w->nlinks; i++)
        if (w->links[i].state == s)
            return true;
    return false;
}

static int publish_step(ctx *c, const cJSON *from);

/* The gates on this generation's transfers. */
static int pipeline(ctx *c)
{
    const dataset_work *w = &c->obs->work;
    dataset_gate g[DATASET_NGATES];
    dataset_judged j;
    int err, failed = -1, unav = -1;
    bool pending = false;
    err = dataset_gates_judge(g, &j, c->obs);
    dataset_judged_free(&j);
    if (err < 0)
        return err;
    if ((err = gates_status(c, g)) < 0)
        return err;
    for (int i = 0; i < DATASET_NGATES; i++) {
        if (g[i].state == DATASET_GATE_FAILED && failed < 0)
            failed = i;
        if (g[i].state == DATASET_GATE_UNAVAILABLE && unav < 0)
            unav = i;
        if (g[i].state == DATASET_GATE_PENDING)
            pending = true;
    }
    /* every gate is judged before the promotion blocks, so that status.gates shows all that needs fixing */
    if (failed >= 0 && !pending) {
        char msg[MSG_MAX];
        snprintf(msg, sizeof(msg), "gate %s failed: %s", g[failed].name, g[failed].message);
        if ((err = cond(c, COND_GATES, COND_FALSE, dataset_gate_reasons[failed], msg)) < 0)
            return err;
        return stalled(c, dataset_gate_reasons[failed], msg);
    }
    if (unav >= 0 || pending) {
        if ((err = cond(c, COND_GATES, COND_UNKNOWN, unav >= 0 ? "SourceUnavailable" : "Validating",
                        "the gates have not all been evaluated yet")) < 0)
            return err;
        if (g[DATASET_GATE_CHECKSUMS].state == DATASET_GATE_PENDING && w->artifacts)
            err = set_progress(c);
        else
            cJSON_DeleteItemFromObjectCaseSensitive(c->st, "progress");
        if (err < 0)
            return err;
        bool not_started = !w->artifacts || any_item(w, DATASET_ITEM_NONE) ||
                           (w->docs[DATASET_DOC_STAC].state == DATASET_ITEM_DONE && !w->links_listed);
        if (not_started)
            c->plan->action = DATASET_ACT_FETCH;
        c->plan->requeue_ms = DATASET_PROGRESS_MS;
        if (unav >= 0) {
            long long due = (long long)w->failed_at * 1000 + dataset_backoff_ms(w->attempts);
            long long now = (long long)c->obs->now * 1000;
            if (due <= now) {
                c->plan->action = DATASET_ACT_FETCH;
                c->plan->retry = true;
            } else if (!pending)
                c->plan->requeue_ms = (long)(due - now);
            char msg[MSG_MAX];
            snprintf(msg, sizeof(msg), "gate %s: %s; tried again with backoff", g[unav].name, g[unav].message);
            return unavailable(c, msg);
        }
        return progress(c, "Validating", "the gates are being evaluated: the artifacts and documents are downloading");
    }
    if ((err = cond(c, COND_GATES, COND_TRUE, "AllPassed", "every gate passed")) < 0)
        return err;
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "progress");
    return publish_step(c, NULL);
}

/* Every gate passed: seal (from: the receipt to take the gates from, or the status's gates), then publish. */
static int publish_step(ctx *c, const cJSON *from)
{
    char msg[MSG_MAX];
    const char *reason = NULL;
    bool refused = false;
    int err;
    if ((err = seal_promoted(c, from, msg, &reason, &refused)) < 0)
        return err;
    if (refused)
        return stalled(c, reason, msg);
    c->plan->action = DATASET_ACT_SEAL;
    snprintf(msg, sizeof(msg), "every gate passed: publishing version %s in ConfigMap %s", c->version, c->plan->index);
    return progress(c, "Publishing", msg);
}

/* The receipt was sealed for this generation and the entry may not be in the index yet. */
static int sealed_step(ctx *c, const cJSON *receipt)
{
    const char *ref = json_str(receipt, "auditRef", NULL);
    char msg[MSG_MAX];
    int err;
    int held = index_holds_ref(c, ref);
    if (held < 0)
        return held;
    if (held) {
        const char *cur = index_current(c);
        if ((err = make_entry(c, ref, msg)) < 0)
            return err == MB_EINVAL ? stalled(c, "InvalidSpec", msg) : err;
        if (same(cur, c->plan->entry))
            return promoted(c);
    }
    /* what the entry would replace now: as sealed, or sealed again */
    char *replaced = NULL;
    const char *reason = NULL;
    const char *published = json_str(receipt, "prevAuditRef", NULL);
    if ((err = make_entry(c, ref, msg)) < 0)
        return err == MB_EINVAL ? stalled(c, "InvalidSpec", msg) : err;
    /* the receipt before it, when Promoted, sealed this object's earlier entry, which may be replaced as ours */
    if ((err = would_replace(&replaced, c, c->plan->entry, published && *published ? published : NULL, &reason, msg)) !=
        0) {
        if (err < 0)
            return err;
        return stalled(c, reason, msg);
    }
    const char *sealed = json_str(receipt, "replacedEntry", NULL);
    if ((!replaced && !sealed) || same(replaced, sealed)) {
        free(c->plan->expect_replaced);
        c->plan->expect_replaced = replaced;
        c->plan->action = DATASET_ACT_PUBLISH;
        snprintf(msg, sizeof(msg), "every gate passed: publishing version %s in ConfigMap %s", c->version,
                 c->plan->index);
        return progress(c, "Publishing", msg);
    }
    free(replaced);
    return publish_step(c, receipt); /* another version came in meanwhile: sealed again, naming it */
}

static int revoke(ctx *c)
{
    const char *ref = dataset_published_ref(c->obs->promotion);
    const cJSON *receipt = json_get(c->old, "receipt", NULL);
    char msg[MSG_MAX], at[32];
    int err;
    int held = ref ? index_holds_ref(c, ref) : 0;
    if (held < 0)
        return held;
    if (held) {
        snprintf(c->plan->unpublish_ref, sizeof(c->plan->unpublish_ref), "%s", ref);
        c->plan->action = DATASET_ACT_UNPUBLISH;
        snprintf(msg, sizeof(msg), "removing version %s of %s from ConfigMap %s", c->version, c->id, c->plan->index);
        if ((err = set_phase(c, "Validating")) < 0 ||
            (err = conditions_mark_reconciling(NULL, c->st, "Revoking", msg, c->gen, c->obs->now)) < 0)
            return err;
        return 0;
    }
    bool fresh = !same(json_str(c->old, "phase", NULL), "Revoked") || !this_gen(c);
    snprintf(msg, sizeof(msg), "version %s of %s is revoked: it is not in ConfigMap %s", c->version, c->id,
             c->plan->index);
    if ((err = set_phase(c, "Revoked")) < 0 ||
        (err = conditions_mark_ready(NULL, c->st, "Revoked", msg, c->gen, c->obs->now)) < 0 ||
        (err = cond(c, COND_PUBLISHED, COND_FALSE, "Revoked", msg)) < 0)
        return err;
    cJSON_DeleteItemFromObjectCaseSensitive(c->st, "progress");
    c->plan->drop_work = true;
    if (!(same(json_str(receipt, "outcome", NULL), "Revoked") && json_int(-1, receipt, "generation", NULL) == c->gen)) {
        cJSON *e = cJSON_CreateObject();
        char *removed = NULL, m[DATASET_MSG_MAX];
        if (ref && dataset_index_entry(&removed, c->spec, ref, m) == MB_ENOMEM) {
            cJSON_Delete(e);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        if (!e || timefmt_format(at, sizeof(at), c->obs->now) < 0 ||
            !cJSON_AddStringToObject(e, "outcome", "Revoked") ||
            !cJSON_AddNumberToObject(e, "generation", (double)c->gen) || !cJSON_AddStringToObject(e, "revokedAt", at) ||
            !cJSON_AddStringToObject(e, "datasetID", c->id) || !cJSON_AddStringToObject(e, "versionID", c->version) ||
            !cJSON_AddStringToObject(e, "indexConfigMap", c->plan->index) ||
            (removed && c->obs->work.removed && !cJSON_AddStringToObject(e, "removedEntry", removed))) {
            free(removed);
            cJSON_Delete(e);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        free(removed);
        if ((err = seal(c, e)) < 0)
            return err;
    }
    if (!fresh)
        return 0;
    c->plan->outcome = "Revoked";
    return add_event(c, "Normal", "Revoked", "%s; receipt %s", msg, json_str(c->st, "receipt", "auditRef", NULL) ?: "");
}

/* Promoted for this generation: is the entry still there? */
static int resync(ctx *c, const char *ref)
{
    char msg[MSG_MAX];
    int err;
    if ((err = make_entry(c, ref, msg)) < 0)
        return err == MB_EINVAL ? stalled(c, "InvalidSpec", msg) : err;
    const char *cur = index_current(c);
    c->plan->phase = "Promoted";
    c->plan->drop_work = true;
    c->plan->requeue_ms = DATASET_RESYNC_MS;
    if (same(cur, c->plan->entry))
        return cond(c, COND_PUBLISHED, COND_TRUE, "Published",
                    json_str(conditions_get(c->old, COND_PUBLISHED), "message", NULL));
    if (!cur) {
        c->plan->action = DATASET_ACT_PUBLISH;
        free(c->plan->expect_replaced);
        c->plan->expect_replaced = NULL;
        snprintf(msg, sizeof(msg),
                 "the entry of version %s of %s was removed from ConfigMap %s by hand and is written again", c->version,
                 c->id, c->plan->index);
        return add_event(c, "Warning", "IndexEntryRestored", "%s", msg);
    }
    cJSON *e = NULL;
    if ((err = parse(&e, cur)) < 0)
        return err;
    snprintf(msg, sizeof(msg), "ConfigMap %s now holds version %s of %s, which replaced this one", c->plan->index,
             json_str(e, "versionID", NULL) ?: "(unreadable)", c->id);
    cJSON_Delete(e);
    free(c->plan->entry);
    c->plan->entry = NULL;
    return cond(c, COND_PUBLISHED, COND_FALSE, "Superseded", msg);
}

static int decide(ctx *c)
{
    const dataset_observed *o = c->obs;
    const cJSON *p = o->promotion;
    bool has_finalizer = false;
    const cJSON *f;
    char msg[MSG_MAX];
    cJSON_ArrayForEach(f, json_get(p, "metadata", "finalizers", NULL))
        if (cJSON_IsString(f) && strcmp(f->valuestring, DATASET_FINALIZER) == 0)
            has_finalizer = true;

    if (json_get(p, "metadata", "deletionTimestamp", NULL)) {
        const char *ref = dataset_published_ref(p);
        c->plan->drop_work = true;
        if (!has_finalizer)
            return 0;
        int held = ref ? index_holds_ref(c, ref) : 0;
        if (held < 0)
            return held;
        if (held) {
            snprintf(c->plan->unpublish_ref, sizeof(c->plan->unpublish_ref), "%s", ref);
            c->plan->action = DATASET_ACT_UNPUBLISH;
        } else {
            c->plan->action = DATASET_ACT_REMOVE_FINALIZER;
        }
        return 0;
    }
    if (!has_finalizer) {
        c->plan->action = DATASET_ACT_ADD_FINALIZER;
        return 0;
    }
    const char *problem = spec_problem(c, msg);
    if (problem)
        return stalled(c, "InvalidSpec", problem);
    if (json_bool(false, c->spec, "revoke", NULL))
        return revoke(c);

    const char *phase = json_str(c->old, "phase", NULL);
    const cJSON *receipt = json_get(c->old, "receipt", NULL);
    bool sealed_now = same(json_str(receipt, "outcome", NULL), "Promoted") &&
                      json_int(-1, receipt, "generation", NULL) == c->gen;
    if (this_gen(c) && same(phase, "Promoted") && sealed_now)
        return resync(c, json_str(receipt, "auditRef", NULL));
    if (sealed_now)
        return sealed_step(c, receipt);
    if (this_gen(c) && same(phase, "Blocked") && conditions_true_reason(c->old, COND_STALLED) && work_empty(&o->work)) {
        c->plan->phase = "Blocked";
        c->plan->drop_work = true;
        return 0;
    }
    return pipeline(c);
}

int dataset_decide(dataset_plan *out, const dataset_observed *obs)
{
    ctx c = {.obs = obs, .plan = out};
    const cJSON *p = obs->promotion;
    int err = 0;
    memset(out, 0, sizeof(*out));
    c.old = json_get(p, "status", NULL);
    c.spec = json_get(p, "spec", NULL);
    c.gen = json_int(0, p, "metadata", "generation", NULL);
    c.ns = json_str(p, "metadata", "namespace", NULL);
    c.name = json_str(p, "metadata", "name", NULL);
    c.id = json_str(c.spec, "datasetID", NULL);
    c.version = json_str(c.spec, "versionID", NULL);
    if (!c.ns || !c.name)
        return mb_error_set(MB_EINVAL, "the DatasetPromotion has no metadata.namespace or metadata.name");
    dataset_index_name(out->index, p);
    c.st = cJSON_IsObject(c.old) ? cJSON_Duplicate(c.old, true) : cJSON_CreateObject();
    if (!c.st) {
        dataset_plan_clear(out);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if ((err = decide(&c)) < 0) {
        cJSON_Delete(c.st);
        dataset_plan_clear(out);
        return err;
    }
    if (c.old && cJSON_Compare(c.old, c.st, true)) {
        cJSON_Delete(c.st);
        out->receipt = NULL;
    } else if (!c.old && cJSON_GetArraySize(c.st) == 0) {
        cJSON_Delete(c.st);
    } else {
        out->status = c.st;
    }
    if (!out->phase) { /* a static string: the status it was read from may go before the plan */
        static const char *const phases[] = {"Validating", "Promoted", "Blocked", "Revoked"};
        const char *ph = json_str(out->status ? out->status : c.old, "phase", NULL);
        for (size_t i = 0; ph && i < sizeof(phases) / sizeof(phases[0]); i++)
            if (strcmp(ph, phases[i]) == 0)
                out->phase = phases[i];
    }
    return 0;
}

void dataset_plan_clear(dataset_plan *plan)
{
    if (!plan)
        return;
    cJSON_Delete(plan->status);
    free(plan->entry);
    free(plan->expect_replaced);
    for (size_t i = 0; i < plan->n_events; i++)
        free(plan->events[i].message);
    memset(plan, 0, sizeof(*plan));
}
