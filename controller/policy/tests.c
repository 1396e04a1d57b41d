/*
 * PolicyBundle decision tests as a chain of transfers (policy/tests.h). The
 * chain holds a reference to its run, the caller another; each completion
 * (on the loop thread) judges its answer and starts the next step.
 */
#include "policy/tests.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { STEP_POLICY, STEP_DATA, STEP_CASE, STEP_UNLOAD } step_kind;

typedef struct {
    step_kind kind;
    char *method, *url;
    const bundle_file *file; /* STEP_POLICY, STEP_DATA: the body */
    int case_index;          /* STEP_CASE */
} step;

struct policy_test_run {
    pthread_mutex_t mu;
    int refs;
    net_loop *net;
    loop *loop;
    char *key, *opa;
    cJSON *cases;
    step *steps;
    size_t n, i, first_unload;
    net_transfer *cur;
    cJSON *results;
    char *error;
    bool cancelled, finished;
};

/* ---- the busy OPAs -------------------------------------------------------- */

typedef struct waiter {
    struct waiter *next;
    loop *loop;
    char *key;
} waiter;

typedef struct busy {
    struct busy *next;
    char *url;
    waiter *waiters;
} busy;

static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static busy *busy_list;

/* 1: acquired; 0: busy (key waits); < 0: error. */
static int busy_acquire(const char *url, loop *l, const char *key)
{
    busy *b;
    int rc = 1;
    pthread_mutex_lock(&busy_mu);
    for (b = busy_list; b && strcmp(b->url, url) != 0; b = b->next)
        ;
    if (b) {
        waiter *w;
        rc = 0;
        for (w = b->waiters; w && !(w->loop == l && strcmp(w->key, key) == 0); w = w->next)
            ;
        if (!w && (w = calloc(1, sizeof(*w))) && (w->key = strdup(key))) {
            w->loop = l;
            w->next = b->waiters;
            b->waiters = w;
        } else if (!w || !w->key) {
            free(w);
            rc = mb_error_set(MB_ENOMEM, "out of memory");
        }
    } else if ((b = calloc(1, sizeof(*b))) && (b->url = strdup(url))) {
        b->next = busy_list;
        busy_list = b;
    } else {
        free(b);
        rc = mb_error_set(MB_ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&busy_mu);
    return rc;
}

static void busy_release(const char *url)
{
    busy **pp, *b = NULL;
    pthread_mutex_lock(&busy_mu);
    for (pp = &busy_list; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->url, url) == 0) {
            b = *pp;
            *pp = b->next;
            break;
        }
    for (waiter *w = b ? b->waiters : NULL, *next; w; w = next) {
        next = w->next;
        loop_enqueue(w->loop, w->key); /* under busy_mu: policy_tests_forget_loop cannot free the loop meanwhile */
        free(w->key);
        free(w);
    }
    pthread_mutex_unlock(&busy_mu);
    if (!b)
        return;
    free(b->url);
    free(b);
}

void policy_tests_forget_loop(loop *l)
{
    pthread_mutex_lock(&busy_mu);
    for (busy *b = busy_list; b; b = b->next)
        for (waiter **pp = &b->waiters; *pp;) {
            waiter *w = *pp;
            if (w->loop == l) {
                *pp = w->next;
                free(w->key);
                free(w);
            } else {
                pp = &w->next;
            }
        }
    pthread_mutex_unlock(&busy_mu);
}

/* ---- the run ------------------------------------------------------------- */

static void run_unref(policy_test_run *r)
{
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left > 0)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->steps[i].method);
        free(r->steps[i].url);
    }
    free(r->steps);
    net_transfer_release(r->cur);
    cJSON_Delete(r->cases);
    cJSON_Delete(r->results);
    free(r->error);
    free(r->key);
    free(r->opa);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int add_step(policy_test_run *r, step_kind kind, const char *method, const char *path, const bundle_file *file,
                    int case_index)
{
    step *s = &r->steps[r->n];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->file = file;
    s->case_index = case_index;
    if (!(s->method = strdup(method)) || asprintf(&s->url, "%s%s", r->opa, path) < 0) {
        s->url = NULL;
        free(s->method);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    r->n++;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The steps: load the policies and data, the cases, then unload (the unloads run whatever happened). */
static int build_steps(policy_test_run *r, const policy_tests_opts *o)
{
    char path[4096];
    size_t nf = o->b->nfiles, nc = (size_t)cJSON_GetArraySize(r->cases);
    int err = 0, ci = 0;
    const cJSON *tc;
    if (!(r->steps = calloc(2 * nf + nc + 1, sizeof(*r->steps))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (int pass = 0; pass < 2; pass++) /* the policies, then the data */
        for (size_t i = 0; i < nf; i++) {
            const bundle_file *f = &o->b->files[i];
            if (pass == 0 && ends_with(f->name, ".rego")) {
                snprintf(path, sizeof(path), "/v1/policies/membrane/%s/%s/%s", o->ns, o->name, f->name);
                err = add_step(r, STEP_POLICY, "PUT", path, f, 0);
            } else if (pass == 1 && (strcmp(f->name, "data.json") == 0 || ends_with(f->name, "/data.json"))) {
                if (strcmp(f->name, "data.json") == 0)
                    snprintf(path, sizeof(path), "/v1/data");
                else
                    snprintf(path, sizeof(path), "/v1/data/%.*s", (int)(strlen(f->name) - 10), f->name);
                err = add_step(r, STEP_DATA, "PUT", path, f, 0);
            }
            if (err < 0)
                return err;
        }
    cJSON_ArrayForEach(tc, r->cases) {
        snprintf(path, sizeof(path), "/v1/data/%s", json_str(tc, "path", NULL));
        if ((err = add_step(r, STEP_CASE, "POST", path, NULL, ci++)) < 0)
            return err;
    }
    r->first_unload = r->n;
    for (size_t i = 0; i < r->first_unload; i++) {
        step *s = &r->steps[i];
        if (s->kind == STEP_POLICY)
            err = add_step(r, STEP_UNLOAD, "DELETE", s->url + strlen(r->opa), NULL, 0);
        else if (s->kind == STEP_DATA && strcmp(s->file->name, "data.json") != 0)
            err = add_step(r, STEP_UNLOAD, "DELETE", s->url + strlen(r->opa), NULL, 0);
        else if (s->kind == STEP_DATA) /* the root document cannot be deleted: emptied */
            err = add_step(r, STEP_UNLOAD, "PUT", "/v1/data", NULL, 0);
        if (err < 0)
            return err;
    }
    return 0;
}

static void on_step_done(void *ctx, const net_result *res);

/* Starts the step r->i, or the next that can start; the chain ends after the last. Under r->mu. */
static void run_next(policy_test_run *r)
{
    while (r->i < r->n) {
        step *s = &r->steps[r->i];
        net_request req = {.kind = "bundle",
                           .method = s->method,
                           .url = s->url,
                           .timeout_ms = 10000,
                           .keep_body = true,
                           .max_bytes = 1024 * 1024,
                           .on_done = on_step_done,
                           .ctx = r};
        char *body = NULL;
        if (s->kind == STEP_POLICY || s->kind == STEP_DATA) {
            req.body = (const char *)s->file->data;
            req.body_len = s->file->len;
            req.content_type = s->kind == STEP_POLICY ? "text/plain" : "application/json";
        } else if (s->kind == STEP_CASE) {
            cJSON *in = cJSON_CreateObject();
            const cJSON *input = json_get(cJSON_GetArrayItem(r->cases, s->case_index), "input", NULL);
            if (in && json_set_item(in, "input", input ? cJSON_Duplicate(input, true) : cJSON_CreateObject()) == 0)
                body = cJSON_PrintUnformatted(in);
            cJSON_Delete(in);
            if (!body) {
                if (!r->error)
                    r->error = strdup("out of memory while building a decision test's request");
                r->i = r->first_unload;
                continue;
            }
            req.body = body;
            req.body_len = strlen(body);
        } else if (strcmp(s->method, "PUT") == 0) {
            req.body = "{}";
            req.body_len = 2;
        }
        net_transfer_release(r->cur);
        r->cur = NULL;
        int err = net_transfer_start(&r->cur, r->net, &req);
        free(body);
        if (err == 0)
            return; /* on_step_done goes on */
        if (s->kind != STEP_UNLOAD && !r->error)
            (void)asprintf(&r->error, "%s %s could not start: %s", s->method, s->url, mb_error_last());
        r->i = s->kind == STEP_UNLOAD ? r->i + 1 : r->first_unload;
    }
    r->finished = true;
    busy_release(r->opa);
    if (!r->cancelled) /* after policy_tests_release the loop may be gone */
        loop_enqueue(r->loop, r->key);
}

static int add_result(policy_test_run *r, const cJSON *tc, bool passed, const char *got, const char *message)
{
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "name", json_str(tc, "name", NULL) ?: "") ||
        !cJSON_AddBoolToObject(e, "passed", passed) || !cJSON_AddStringToObject(e, "got", got ? got : "") ||
        !cJSON_AddStringToObject(e, "message", message) || !cJSON_AddItemToArray(r->results, e)) {
        cJSON_Delete(e);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return 0;
}

/* Judges one case's answer; false when the tests cannot go on (an error is set). */
static bool judge_case(policy_test_run *r, const step *s, const net_result *res)
{
    const cJSON *tc = cJSON_GetArrayItem(r->cases, s->case_index);
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(tc, "expect");
    char *got = NULL, *want = cJSON_PrintUnformatted(expect);
    char msg[1024];
    int err;
    if (res->status >= 500) {
        (void)asprintf(&r->error, "decision test %s: OPA answered HTTP %ld to POST %s", json_str(tc, "name", NULL),
                       res->status, s->url);
        free(want);
        return false;
    }
    if (res->status < 200 || res->status > 299) {
        snprintf(msg, sizeof(msg), "OPA answered HTTP %ld to POST %s: check the case's path", res->status, s->url);
        err = add_result(r, tc, false, "", msg);
    } else {
        bool ok = bundle_decision_matches(res->body, res->body_len, expect, &got);
        if (ok)
            snprintf(msg, sizeof(msg), "got %s as expected", got ? got : "?");
        else if (!got)
            snprintf(msg, sizeof(msg), "OPA's answer to POST %s is not a JSON object", s->url);
        else
            snprintf(msg, sizeof(msg), "got %s, expected %s", got, want ? want : "?");
        err = add_result(r, tc, ok, got, msg);
    }
    free(got);
    free(want);
    if (err < 0) {
        r->error = strdup("out of memory while judging the decision tests");
        return false;
    }
    return true;
}

static void on_step_done(void *ctx, const net_result *res)
{
    policy_test_run *r = ctx;
    bool end = false;
    pthread_mutex_lock(&r->mu);
    step *s = &r->steps[r->i];
    if (s->kind == STEP_UNLOAD) {
        r->i++;
    } else if (r->cancelled) {
        r->i = r->first_unload;
    } else if (res->outcome != NET_DONE) {
        if (!r->error)
            r->error = strdup(res->error && *res->error ? res->error : "OPA did not answer");
        r->i = r->first_unload;
    } else if (s->kind != STEP_CASE && (res->status < 200 || res->status > 299)) {
        if (!r->error)
            (void)asprintf(&r->error, "OPA refused to load %s (%s %s answered HTTP %ld): %.200s", s->file->name,
                           s->method, s->url, res->status, res->body ? res->body : "");
        r->i = r->first_unload;
    } else if (s->kind == STEP_CASE && !judge_case(r, s, res)) {
        r->i = r->first_unload;
    } else {
        r->i++;
    }
    run_next(r);
    end = r->finished;
    pthread_mutex_unlock(&r->mu);
    if (end)
        run_unref(r); /* the chain's reference */
}

int policy_tests_start(policy_test_run **out, const policy_tests_opts *o)
{
    policy_test_run *r = NULL;
    size_t n;
    int err;
    *out = NULL;
    if (!(r = calloc(1, sizeof(*r))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    r->refs = 1;
    r->net = o->net;
    r->loop = o->loop;
    if (!(r->key = strdup(o->key)) || !(r->opa = strdup(o->opa_url)) || !(r->cases = cJSON_Duplicate(o->cases, true)) ||
        !(r->results = cJSON_CreateArray())) {
        run_unref(r);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    for (n = strlen(r->opa); n > 0 && r->opa[n - 1] == '/'; n--)
        r->opa[n - 1] = '\0';
    if ((err = build_steps(r, o)) < 0) {
        run_unref(r);
        return err;
    }
    if ((err = busy_acquire(r->opa, o->loop, o->key)) <= 0) {
        run_unref(r);
        return err < 0 ? err : POLICY_TESTS_BUSY;
    }
    r->refs = 2; /* the caller's and the chain's */
    pthread_mutex_lock(&r->mu);
    run_next(r);
    bool end = r->finished;
    pthread_mutex_unlock(&r->mu);
    if (end)
        run_unref(r);
    *out = r;
    return 0;
}

bool policy_tests_finished(policy_test_run *r)
{
    pthread_mutex_lock(&r->mu);
    bool f = r->finished;
    pthread_mutex_unlock(&r->mu);
    return f;
}

int policy_tests_take(policy_test_run *r, cJSON **results, char **error)
{
    *results = NULL;
    *error = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->error) {
        *error = r->error;
        r->error = NULL;
    } else if (r->cancelled) {
        *error = strdup("the decision tests were cancelled");
    } else {
        *results = r->results;
        r->results = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return *results || *error ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
}

void policy_tests_release(policy_test_run *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->cancelled = true;
    if (!r->finished && r->cur && r->steps[r->i].kind != STEP_UNLOAD)
        net_transfer_cancel(r->cur);
    pthread_mutex_unlock(&r->mu);
    run_unref(r);
}
