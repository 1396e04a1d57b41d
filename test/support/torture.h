/*
 * Allocation-failure torture for the pure modules, as curl's -t runs it: an
 * operation is run once unhindered, then again with its 1st, 2nd, 3rd ...
 * allocation failing (that one only), until a run makes fewer allocations than
 * the one that was to fail (OpenSSL's own allocations are sampled, see
 * torture.c). Every run in which an allocation failed must
 * return an error (MB_ENOMEM, the error the input gives anyway, or one the
 * case lists as what that failure may surface as) and free everything it
 * took. Link test/support/torture.c into
 * the test (CMake does it for test_torture*.c) to get the allocator that makes
 * this possible; see the opening paragraph there for how it works and why
 * these tests are left out of sanitizer builds.
 */
#ifndef TEST_TORTURE_H
#define TEST_TORTURE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;         /* names the operation in failure messages */
    int (*run)(void *ctx);    /* the operation: 0 or a negative mb_error; leaves what it made in ctx */
    void (*check)(void *ctx); /* may be NULL: after each run that returned 0, asserts what it made */
    void (*clear)(void *ctx); /* may be NULL: frees what run left in ctx, after every run */
    void *ctx;
    int expect; /* what the unhindered run returns: 0, or the error the input must give */
    /*
     * Besides MB_ENOMEM (and expect, when it is an error), the errors a
     * failed allocation may surface as (0-terminated), e.g. MB_EJSON where
     * cJSON's parser cannot tell a failed allocation from malformed text.
     */
    int errors[4];
    /*
     * May be NULL: whether another error a run with a refused allocation
     * returned is acceptable all the same (mb_error_last() holds its message),
     * for a library that does not always report its own failed allocations.
     */
    bool (*allowed)(void *ctx, int rc);
    /*
     * A run may recover from a failed allocation and return 0 (then check must
     * prove that what it made is still right); otherwise that is a failure.
     */
    bool may_succeed;
} torture_case;

/*
 * Runs the torture for tc; fails the running cmocka test at the first run that
 * breaks a rule, naming the allocation that failed. Returns how many
 * allocations the unhindered run made.
 */
long torture_check(const torture_case *tc);

/* In check and clear: whether the run just made had an allocation refused. */
bool torture_refused(void);

/* Blocks allocated through malloc and its kin and not freed yet, in this process. */
long torture_live(void);

/*
 * What a run made, as text: every run that succeeds must make the same. A
 * fixed buffer, so that writing it allocates nothing.
 */
typedef struct {
    char text[65536];
    size_t len;
    char *first;
} transcript;

/* Appends to the text (fails the test when the buffer is full). */
void tprintf(transcript *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first call keeps the text; each later one asserts it is the same. */
void transcript_check(transcript *t);

void transcript_reset(transcript *t);

/* Forgets the kept text too. */
void transcript_free(transcript *t);

#endif
