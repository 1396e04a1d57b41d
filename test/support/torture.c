/*
 * The allocator behind torture.h. The test executable defines malloc, calloc,
 * realloc, free and the aligned and array variants itself: the dynamic linker
 * binds every caller in the process to the executable's definitions first, so
 * membrane's own calls, cJSON's (its default hooks are malloc and free, no
 * cJSON_InitHooks needed), libyaml's, OpenSSL's and glibc's internal ones
 * (strdup, asprintf, open_memstream, fopen) all come here. Each wrapper counts
 * the live blocks, fails the allocation chosen by torture_check() on the
 * thread that armed it, and hands the real work to glibc's __libc_malloc
 * family; valgrind replaces those too, so its leak check still sees every
 * block. This is the simplest mechanism that sees every allocation without
 * editing the product code, and it cannot share a process with a sanitizer,
 * which interposes malloc the same way (a block allocated by ASan's strdup
 * would come back through this free): CMake builds the torture tests only
 * without MEMBRANE_SANITIZE, so they run in the plain unit step and under
 * valgrind, and the check below refuses to compile them with ASan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "torture.h"
#include "util/error.h"

#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#error "the torture allocator replaces malloc and cannot run under AddressSanitizer"
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#error "the torture allocator replaces malloc and cannot run under a sanitizer"
#endif
#endif

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

#define TRACE_MAX 32

static atomic_long live;

/* Per thread: only the thread that armed the torture sees failures. */
static _Thread_local bool armed;
static _Thread_local long fail_at; /* the n-th allocation since arming fails; 0: none */
static _Thread_local long calls;   /* allocations since arming */
static _Thread_local bool hit;     /* the chosen allocation was refused */
static _Thread_local bool in_trace;
static _Thread_local void *trace[TRACE_MAX];
static _Thread_local int trace_len;

/* Whether this allocation is the one to refuse (and where it came from, when it is). */
static bool refuse(void)
{
    if (!armed || in_trace)
        return false;
    if (++calls != fail_at)
        return false;
    hit = true;
    in_trace = true; /* backtrace() must not count, nor fail, its own allocations */
    trace_len = backtrace(trace, TRACE_MAX);
    in_trace = false;
    errno = ENOMEM;
    return true;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *malloc(size_t size)
{
    return refuse() ? NULL : counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    return refuse() ? NULL : counted(__libc_calloc(n, size));
}

void free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    __libc_free(p);
}

void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    if (size == 0) { /* glibc frees the block and returns NULL */
        free(p);
        return NULL;
    }
    return refuse() ? NULL : __libc_realloc(p, size);
}

void *reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

void *memalign(size_t align, size_t size)
{
    return refuse() ? NULL : counted(__libc_memalign(align, size));
}

void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p;
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    if (!(p = memalign(align, size)))
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size)
{
    return memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(page, (size + page - 1) & ~(page - 1));
}

long torture_live(void)
{
    return atomic_load(&live);
}

static void arm(long n)
{
    calls = 0;
    fail_at = n;
    hit = false;
    trace_len = 0;
    armed = true;
}

/* Stops failing and counting; returns how many allocations were made since arm(). */
static long disarm(void)
{
    armed = false;
    return calls;
}

/* Prints where the refused allocation was made (binary+offset frames: addr2line -f -e BINARY OFFSET). */
static void trace_print(void)
{
    if (trace_len > 0) {
        print_error("the refused allocation was made from:\n");
        backtrace_symbols_fd(trace, trace_len, STDERR_FILENO);
    }
}

static bool error_allowed(const torture_case *tc, int rc)
{
    if (rc == MB_ENOMEM || (tc->expect < 0 && rc == tc->expect))
        return true;
    for (size_t i = 0; i < sizeof(tc->errors) / sizeof(tc->errors[0]) && tc->errors[i]; i++)
        if (tc->errors[i] == rc)
            return true;
    return false;
}

/*
 * Whether the process's malloc is this file's: valgrind replaces a malloc
 * defined in the executable too unless told not to.
 */
static void self_test(void)
{
    void *(*volatile alloc)(size_t) = malloc;
    void *p;
    arm(0);
    p = alloc(1);
    if (disarm() != 1)
        fail_msg("malloc is not the torture allocator's: under valgrind, run with "
                 "--soname-synonyms=somalloc=nouserintercepts");
    free(p);
}

/* An unhindered run must return what the case expects. */
static void unhindered(const torture_case *tc, int rc)
{
    if (rc != tc->expect)
        fail_msg("%s: with no allocation refused it returned %s (%s), not %s", tc->name, mb_error_name(rc),
                 rc < 0 ? mb_error_last() : "", mb_error_name(tc->expect));
}

/* More runs than this means the operation never stops allocating. */
#define TORTURE_MAX_RUNS 1000000L

long torture_check(const torture_case *tc)
{
    void *warm[1];
    long total, made, before;
    int rc;

    /* backtrace() loads libgcc_s on its first call: do that now, not inside a counted run */
    backtrace(warm, 1);
    self_test();

    /* the unhindered run also fills one-time caches (stdio, OpenSSL's method store) */
    mb_error_clear();
    arm(0);
    rc = tc->run(tc->ctx);
    total = disarm();
    unhindered(tc, rc);
    if (tc->check)
        tc->check(tc->ctx);
    if (tc->clear)
        tc->clear(tc->ctx);

    for (long n = 1; n <= TORTURE_MAX_RUNS; n++) {
        before = torture_live();
        mb_error_clear();
        arm(n);
        rc = tc->run(tc->ctx);
        made = disarm();
        if (!hit) {
            /* fewer than n allocations: this run went through unhindered, and that ends the torture */
            unhindered(tc, rc);
            if (tc->check)
                tc->check(tc->ctx);
            if (tc->clear)
                tc->clear(tc->ctx);
            if (torture_live() != before)
                fail_msg("%s: an unhindered run left %ld block(s) allocated", tc->name, torture_live() - before);
            return total;
        }
        if (rc >= 0 && !tc->may_succeed) {
            trace_print();
            fail_msg("%s: allocation %ld (of %ld) was refused, yet it returned %d", tc->name, n, made, rc);
        }
        if (rc < 0 && !error_allowed(tc, rc)) {
            trace_print();
            fail_msg("%s: allocation %ld (of %ld) was refused and it returned %s: %s", tc->name, n, made,
                     mb_error_name(rc), mb_error_last());
        }
        if (rc == tc->expect && tc->check)
            tc->check(tc->ctx);
        if (tc->clear)
            tc->clear(tc->ctx);
        if (torture_live() != before) {
            trace_print();
            fail_msg("%s: allocation %ld (of %ld) was refused; it returned %s (%s) and left %ld block(s) allocated",
                     tc->name, n, made, mb_error_name(rc), mb_error_last(), torture_live() - before);
        }
    }
    fail_msg("%s: still allocating after %ld runs", tc->name, TORTURE_MAX_RUNS);
    return total;
}
