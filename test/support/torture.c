/*
 * The allocator behind torture.h. The test executable defines malloc, calloc,
 * realloc, free and the aligned and array variants itself: the dynamic linker
 * binds every caller in the process to the executable's definitions first, so
 * membrane's own calls, cJSON's (its default hooks are malloc and free, no
 * cJSON_InitHooks needed), libyaml's, OpenSSL's and glibc's internal ones
 * (strdup, asprintf, open_memstream, fopen) all come here. Each wrapper fails
 * the allocation chosen by torture_check() on the thread that armed it,
 * remembers every block a run allocates (and who called malloc for it) until
 * it is freed, and hands the real work to glibc's __libc_malloc family;
 * valgrind replaces those too, so its leak check still sees every block. A
 * block a run left behind is a leak, unless OpenSSL allocated it: after one of
 * its own allocations fails OpenSSL rebuilds caches it keeps for the process,
 * which only valgrind's leak check (definitely lost, at exit) can tell from a
 * leak of an OpenSSL object membrane owns; the valgrind step runs these tests.
 * Allocations are counted in two kinds, OpenSSL's (by the address of the code
 * that called malloc) and all others: every one of the others is refused in
 * turn, and OpenSSL's at a stride that leaves some 64 runs (decoding one
 * private key takes it thousands of allocations, and the torture is quadratic
 * in them); MB_TORTURE_FULL=1 refuses every one of OpenSSL's too.
 *
 * This is the simplest mechanism that sees every allocation without editing
 * the product code, and it cannot share a process with a sanitizer, which
 * interposes malloc the same way (a block allocated by ASan's strdup would
 * come back through this free): CMake builds the torture tests only without
 * MEMBRANE_SANITIZE, so they run in the plain unit step and under valgrind
 * (with --soname-synonyms=somalloc=nouserintercepts, or valgrind would replace
 * this malloc too), and the check below refuses to compile them with ASan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "torture.h"
#include "util/error.h"

#include <errno.h>
#include <execinfo.h>
#include <link.h>
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

/* Per thread: only the thread that armed the torture sees failures, and only its blocks are remembered. */
static _Thread_local bool armed;
static _Thread_local bool fail_crypto;  /* the allocation to refuse is counted among OpenSSL's */
static _Thread_local long fail_at;      /* the n-th allocation of its kind since arming fails; 0: none */
static _Thread_local long calls;        /* allocations since arming */
static _Thread_local long calls_crypto; /* of which OpenSSL made */
static _Thread_local bool hit;          /* the chosen allocation was refused */
static _Thread_local bool in_trace;
static _Thread_local void *trace[TRACE_MAX];
static _Thread_local int trace_len;

/*
 * The blocks the current run allocated and has not freed: an open-addressing
 * table keyed by address (a removed entry keeps its slot as a tombstone until
 * the table is emptied), and the slots used, to empty it quickly.
 */
#define BLOCKS_BITS 17
#define BLOCKS_SIZE (1u << BLOCKS_BITS)
#define BLOCKS_MAX (BLOCKS_SIZE / 2)
#define TOMBSTONE ((void *)1)

typedef struct {
    void *p;
    const void *caller;
} block;

static block blocks[BLOCKS_SIZE];
static uint32_t used[BLOCKS_MAX];
static size_t n_used;
static atomic_bool tracking; /* a run, or its check and clear, is going on */
static bool overflow;        /* more blocks than BLOCKS_MAX: the run is too large to judge */

static uint32_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> (64 - BLOCKS_BITS));
}

static void block_add(void *p, const void *caller)
{
    if (n_used == BLOCKS_MAX) {
        overflow = true;
        return;
    }
    uint32_t i = slot_of(p);
    while (blocks[i].p && blocks[i].p != TOMBSTONE)
        i = (i + 1) & (BLOCKS_SIZE - 1);
    if (!blocks[i].p)
        used[n_used++] = i;
    blocks[i] = (block){p, caller};
}

/* Forgets p; returns whether it was there, with its caller. */
static bool block_remove(const void *p, const void **caller)
{
    for (uint32_t i = slot_of(p); blocks[i].p; i = (i + 1) & (BLOCKS_SIZE - 1)) {
        if (blocks[i].p == p) {
            *caller = blocks[i].caller;
            blocks[i].p = TOMBSTONE;
            return true;
        }
    }
    return false;
}

static void blocks_reset(void)
{
    for (size_t i = 0; i < n_used; i++)
        blocks[used[i]] = (block){NULL, NULL};
    n_used = 0;
    overflow = false;
}

static bool from_crypto(const void *caller);

/* Whether this allocation, for caller, is the one to refuse (and where it came from, when it is). */
static bool refuse(const void *caller)
{
    if (!armed || in_trace)
        return false;
    bool crypto = from_crypto(caller);
    calls++;
    calls_crypto += crypto;
    if (crypto != fail_crypto || (crypto ? calls_crypto : calls - calls_crypto) != fail_at)
        return false;
    hit = true;
    in_trace = true; /* backtrace() must not count, nor fail, its own allocations */
    trace_len = backtrace(trace, TRACE_MAX);
    in_trace = false;
    errno = ENOMEM;
    return true;
}

static void *counted(void *p, const void *caller)
{
    if (p) {
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
        if (armed && !in_trace)
            block_add(p, caller);
    }
    return p;
}

static void uncounted(void *p)
{
    const void *caller;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    if (atomic_load_explicit(&tracking, memory_order_relaxed))
        block_remove(p, &caller);
}

void *malloc(size_t size)
{
    const void *caller = __builtin_return_address(0);
    return refuse(caller) ? NULL : counted(__libc_malloc(size), caller);
}

void *calloc(size_t n, size_t size)
{
    const void *caller = __builtin_return_address(0);
    return refuse(caller) ? NULL : counted(__libc_calloc(n, size), caller);
}

void free(void *p)
{
    if (!p)
        return;
    uncounted(p);
    __libc_free(p);
}

static void *resize(void *p, size_t size, const void *caller)
{
    void *q;
    const void *first = caller;
    if (!p)
        return refuse(caller) ? NULL : counted(__libc_malloc(size), caller);
    if (size == 0) { /* glibc frees the block and returns NULL */
        free(p);
        return NULL;
    }
    if (refuse(caller) || !(q = __libc_realloc(p, size)))
        return NULL;
    if (q != p && atomic_load_explicit(&tracking, memory_order_relaxed) && block_remove(p, &first))
        block_add(q, first); /* moved: still the block of whoever allocated it first */
    return q;
}

void *realloc(void *p, size_t size)
{
    return resize(p, size, __builtin_return_address(0));
}

void *reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return resize(p, n * size, __builtin_return_address(0));
}

static void *aligned(size_t align, size_t size, const void *caller)
{
    return refuse(caller) ? NULL : counted(__libc_memalign(align, size), caller);
}

void *memalign(size_t align, size_t size)
{
    return aligned(align, size, __builtin_return_address(0));
}

void *aligned_alloc(size_t align, size_t size)
{
    return aligned(align, size, __builtin_return_address(0));
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p;
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    if (!(p = aligned(align, size, __builtin_return_address(0))))
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size)
{
    return aligned((size_t)sysconf(_SC_PAGESIZE), size, __builtin_return_address(0));
}

void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return aligned(page, (size + page - 1) & ~(page - 1), __builtin_return_address(0));
}

bool torture_refused(void)
{
    return hit;
}

long torture_live(void)
{
    return atomic_load(&live);
}

/* ---- where a block came from -------------------------------------------------- */

/* The code of libcrypto, whose caches may keep blocks a run made (see the opening paragraph). */
static uintptr_t crypto_lo, crypto_hi;

static int find_crypto(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "/libcrypto.so"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            crypto_lo = info->dlpi_addr + ph->p_vaddr;
            crypto_hi = crypto_lo + ph->p_memsz;
        }
    }
    return 1;
}

static bool from_crypto(const void *caller)
{
    return (uintptr_t)caller >= crypto_lo && (uintptr_t)caller < crypto_hi;
}

/*
 * Reports the blocks the run left, by the address of the code that allocated
 * each (binary+offset: addr2line -f -e BINARY OFFSET); returns how many were
 * membrane's (or another library's) rather than OpenSSL's.
 */
static long leftovers(bool print)
{
    long n = 0;
    for (size_t i = 0; i < n_used; i++) {
        const block *b = &blocks[used[i]];
        if (b->p == NULL || b->p == TOMBSTONE || from_crypto(b->caller))
            continue;
        if (print && n < 20) {
            void *frame = (void *)b->caller;
            print_error("a block left allocated was allocated by:\n");
            backtrace_symbols_fd(&frame, 1, STDERR_FILENO);
        }
        n++;
    }
    return n;
}

/* ---- the torture ---------------------------------------------------------------- */

static void arm(bool crypto, long n)
{
    blocks_reset();
    calls = calls_crypto = 0;
    fail_crypto = crypto;
    fail_at = n;
    hit = false;
    trace_len = 0;
    atomic_store(&tracking, true);
    armed = true;
}

/* Stops failing and remembering new blocks; returns how many allocations were made since arm(). */
static long disarm(void)
{
    armed = false;
    return calls;
}

/* After the run's check and clear: stops following frees; returns the blocks left (see leftovers). */
static long settle(bool print)
{
    long n = leftovers(print);
    atomic_store(&tracking, false);
    return n;
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
    arm(false, 0);
    p = alloc(1);
    if (disarm() != 1)
        fail_msg("malloc is not the torture allocator's: under valgrind, run with "
                 "--soname-synonyms=somalloc=nouserintercepts");
    free(p);
    if (settle(false) != 0)
        fail_msg("the torture allocator does not see a block freed");
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

/* OpenSSL's allocations are refused at a stride that leaves at most this many runs (MB_TORTURE_FULL=1: all). */
#define CRYPTO_RUNS 64

/*
 * Refuses the allocations of one kind (OpenSSL's, or everyone else's) in
 * turn: the first, then every stride-th after it, until a run makes fewer of
 * that kind. Fails the test at the first run that breaks a rule.
 */
static void torture_pass(const torture_case *tc, bool crypto, long stride)
{
    long made, left;
    int rc;

    for (long n = 1; n <= TORTURE_MAX_RUNS; n += stride) {
        mb_error_clear();
        arm(crypto, n);
        rc = tc->run(tc->ctx);
        made = disarm();
        if (!hit) {
            /* fewer than n allocations of the kind: this run went through unhindered, and that ends the pass */
            unhindered(tc, rc);
            if (tc->check)
                tc->check(tc->ctx);
            if (tc->clear)
                tc->clear(tc->ctx);
            if ((left = settle(true)) != 0)
                fail_msg("%s: an unhindered run left %ld block(s) allocated", tc->name, left);
            return;
        }
        if (rc >= 0 && !tc->may_succeed) {
            settle(false);
            trace_print();
            fail_msg("%s: allocation %ld (of %ld) was refused, yet it returned %d", tc->name, n, made, rc);
        }
        if (rc < 0 && !error_allowed(tc, rc) && !(tc->allowed && tc->allowed(tc->ctx, rc))) {
            settle(false);
            trace_print();
            fail_msg("%s: allocation %ld (of %ld) was refused and it returned %s: %s", tc->name, n, made,
                     mb_error_name(rc), mb_error_last());
        }
        if (rc == tc->expect && tc->check)
            tc->check(tc->ctx);
        if (tc->clear)
            tc->clear(tc->ctx);
        if (overflow) {
            settle(false);
            fail_msg("%s: a run made more than %u allocations, too many to follow", tc->name, BLOCKS_MAX);
        }
        if ((left = settle(true)) != 0) {
            trace_print();
            fail_msg("%s: %s allocation %ld (of %ld) was refused; it returned %s (%s) and left %ld block(s) allocated",
                     tc->name, crypto ? "OpenSSL's" : "the", n, made, mb_error_name(rc), rc < 0 ? mb_error_last() : "",
                     left);
        }
    }
    fail_msg("%s: still allocating after %ld runs", tc->name, TORTURE_MAX_RUNS);
}

long torture_check(const torture_case *tc)
{
    void *warm[1];
    long total, crypto, stride;
    const char *full = getenv("MB_TORTURE_FULL");
    int rc;

    /* backtrace() loads libgcc_s on its first call: do that now, not inside a counted run */
    backtrace(warm, 1);
    if (!crypto_hi)
        dl_iterate_phdr(find_crypto, NULL);
    self_test();

    /* the unhindered run also fills one-time caches (stdio, the time zone, OpenSSL's method store) */
    mb_error_clear();
    arm(false, 0);
    rc = tc->run(tc->ctx);
    total = disarm();
    crypto = calls_crypto;
    unhindered(tc, rc);
    if (tc->check)
        tc->check(tc->ctx);
    if (tc->clear)
        tc->clear(tc->ctx);
    settle(false);

    /*
     * Every allocation but OpenSSL's, then OpenSSL's: decoding one private key
     * takes it thousands, which would make the torture quadratic in them.
     */
    torture_pass(tc, false, 1);
    stride = full && strcmp(full, "1") == 0 ? 1 : crypto / CRYPTO_RUNS + 1;
    torture_pass(tc, true, stride);
    return total;
}

void tprintf(transcript *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(t->text) - t->len);
    t->len += (size_t)n;
}

void transcript_check(transcript *t)
{
    if (!t->first) {
        t->first = strdup(t->text);
        assert_non_null(t->first);
        return;
    }
    assert_string_equal(t->text, t->first);
}

void transcript_reset(transcript *t)
{
    t->len = 0;
    t->text[0] = '\0';
}

void transcript_free(transcript *t)
{
    free(t->first);
    t->first = NULL;
    transcript_reset(t);
}
