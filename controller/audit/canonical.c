/*
 * RFC 8785 canonical JSON over cJSON trees, and the SHA-256 audit reference of
 * it (EVP). The writer walks the tree once, appending to a growing buffer and
 * keeping a JSONPath-like trail ("$.history[2].digest") so that a refusal can
 * name the member that has no canonical form.
 */
#include "audit/canonical.h"
#include "util/error.h"
#include "util/text.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper trees than this are refused rather than recursed into. */
#define CANON_MAX_DEPTH 1024
#define CANON_PATH_MAX 256

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    char path[CANON_PATH_MAX];
    size_t path_len;
    int depth;
} canon_writer;

static int put(canon_writer *w, const char *s, size_t n)
{
    if (w->cap - w->len <= n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len <= n) {
            if (cap > SIZE_MAX / 2)
                return mb_error_set(MB_ENOMEM, "out of memory while writing canonical JSON");
            cap *= 2;
        }
        char *data = realloc(w->data, cap);
        if (!data)
            return mb_error_set(MB_ENOMEM, "out of memory while writing canonical JSON");
        w->data = data;
        w->cap = cap;
    }
    memcpy(w->data + w->len, s, n);
    w->len += n;
    w->data[w->len] = '\0';
    return 0;
}

static int puts_(canon_writer *w, const char *s)
{
    return put(w, s, strlen(s));
}

/* Appends to the trail; returns the length to restore. Truncates silently (the trail is for messages). */
static size_t path_push(canon_writer *w, const char *fmt_key, const char *key, int index)
{
    size_t old = w->path_len;
    size_t room = sizeof(w->path) - w->path_len;
    int n = key ? snprintf(w->path + w->path_len, room, fmt_key, key)
                : snprintf(w->path + w->path_len, room, "[%d]", index);
    if (n > 0)
        w->path_len += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

static void path_pop(canon_writer *w, size_t old)
{
    w->path_len = old;
    w->path[old] = '\0';
}

/*
 * Decodes one UTF-8 sequence of at most n bytes at s into *cp; returns its
 * length, or 0 when it is not well-formed (overlong forms, surrogates and
 * code points past U+10FFFF are not).
 */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c, min;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    uint32_t cp;
    while (n) {
        size_t l = utf8_decode(p, n, &cp);
        if (!l)
            return false;
        p += l;
        n -= l;
    }
    return true;
}

/* The first UTF-16 code unit of a code point (its lead surrogate when astral). */
static uint32_t utf16_first_unit(uint32_t cp)
{
    return cp < 0x10000 ? cp : 0xd800 + ((cp - 0x10000) >> 10);
}

/*
 * Orders two valid UTF-8 strings as their UTF-16 code unit sequences compare
 * (RFC 8785 3.2.3). That is code point order except that U+E000..U+FFFF sort
 * after the astral planes, whose lead surrogates are D800..DBFF.
 */
static int utf16_cmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    size_t na = strlen(a), nb = strlen(b);

    while (na && nb) {
        uint32_t ca = 0, cb = 0;
        size_t la = utf8_decode(p, na, &ca), lb = utf8_decode(q, nb, &cb);
        if (!la || !lb) /* not reached: names are validated before sorting */
            return la ? 1 : lb ? -1 : 0;
        if (ca != cb) {
            uint32_t ua = utf16_first_unit(ca), ub = utf16_first_unit(cb);
            if (ua != ub)
                return ua < ub ? -1 : 1;
            return ca < cb ? -1 : 1; /* same lead surrogate: trail surrogates follow code point order */
        }
        p += la, na -= la;
        q += lb, nb -= lb;
    }
    return na ? 1 : nb ? -1 : 0;
}

static int member_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return utf16_cmp(x->string, y->string);
}

static int write_string(canon_writer *w, const char *s, const char *what)
{
    int err = 0;
    const char *run = s;

    if (!utf8_valid(s))
        return mb_error_set(MB_EINVAL, "%s at %s is not valid UTF-8; receipts hold only Unicode text", what, w->path);
    if ((err = put(w, "\"", 1)) < 0)
        return err;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        const char *esc = NULL;
        char hex[7];
        if (u >= 0x20 && u != '"' && u != '\\')
            continue;
        switch (u) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: snprintf(hex, sizeof(hex), "\\u%04x", u); esc = hex;
        }
        if ((err = put(w, run, (size_t)(c - run))) < 0 || (err = puts_(w, esc)) < 0)
            return err;
        run = c + 1;
    }
    if ((err = puts_(w, run)) < 0)
        return err;
    return put(w, "\"", 1);
}

static unsigned long long pow10_u(int p)
{
    unsigned long long r = 1;
    while (p-- > 0)
        r *= 10;
    return r;
}

/*
 * The shortest decimal that reads back as d (> 0, finite), choosing the
 * closest when several of that length do: its digits (no trailing zeros) in
 * digits and the exponent n with d = 0.DIGITS x 10^n. For each length p the
 * two p-digit decimals around d are the only candidates; printf's %.*e gives
 * the nearer (correctly rounded, ties to even), and the other one is tried
 * too because near a power of two the interval that reads back as d is
 * lopsided.
 */
static void shortest_digits(char digits[24], int *n, double d)
{
    unsigned long long m = 0;
    int e = 0;

    for (int p = 1; p <= 17; p++) {
        char sci[40], alt[48];
        const char *c;
        snprintf(sci, sizeof(sci), "%.*e", p - 1, d);
        m = 0;
        for (c = sci; *c != 'e'; c++)
            if (*c >= '0' && *c <= '9')
                m = m * 10 + (unsigned long long)(*c - '0');
        e = atoi(c + 1);
        double back = strtod(sci, NULL);
        if (back == d)
            break;
        unsigned long long m2;
        int e2 = e;
        if (back < d) {
            m2 = m + 1;
            if (m2 == pow10_u(p))
                m2 = pow10_u(p - 1), e2 = e + 1;
        } else {
            m2 = m - 1;
            if (m2 < pow10_u(p - 1))
                m2 = pow10_u(p) - 1, e2 = e - 1;
        }
        snprintf(alt, sizeof(alt), "%llue%d", m2, e2 - (p - 1));
        if (strtod(alt, NULL) == d) {
            m = m2, e = e2;
            break;
        }
        /* p == 17 always reads back (a double has at most 17 significant digits) */
    }
    snprintf(digits, 24, "%llu", m);
    size_t k = strlen(digits);
    while (k > 1 && digits[k - 1] == '0')
        digits[--k] = '\0';
    *n = e + 1;
}

/* ECMAScript Number::toString (ECMA-262 6.1.6.1.20), as RFC 8785 3.2.2.3 requires. */
static void format_number(char out[40], double d)
{
    char digits[24];
    char *o = out;
    int n, k;

    if (d == 0) { /* also -0 */
        strcpy(out, "0");
        return;
    }
    if (d == trunc(d) && fabs(d) <= 9007199254740992.0) {
        snprintf(out, 40, "%lld", (long long)d);
        return;
    }
    if (d < 0) {
        *o++ = '-';
        d = -d;
    }
    shortest_digits(digits, &n, d);
    k = (int)strlen(digits);
    if (k <= n && n <= 21) {
        o += sprintf(o, "%s", digits);
        for (int i = 0; i < n - k; i++)
            *o++ = '0';
        *o = '\0';
    } else if (0 < n && n <= 21) {
        sprintf(o, "%.*s.%s", n, digits, digits + n);
    } else if (-6 < n && n <= 0) {
        o += sprintf(o, "0.");
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        sprintf(o, "%s", digits);
    } else {
        int x = n - 1;
        if (k == 1)
            sprintf(o, "%ce%c%d", digits[0], x < 0 ? '-' : '+', abs(x));
        else
            sprintf(o, "%c.%se%c%d", digits[0], digits + 1, x < 0 ? '-' : '+', abs(x));
    }
}

static int write_value(canon_writer *w, const cJSON *v);

static int write_object(canon_writer *w, const cJSON *obj)
{
    int err = 0;
    size_t n = 0, i;
    const cJSON **members = NULL;
    const cJSON *c;

    for (c = obj->child; c; c = c->next)
        n++;
    if (n == 0)
        return puts_(w, "{}");
    if (!(members = malloc(n * sizeof(*members))))
        return mb_error_set(MB_ENOMEM, "out of memory while writing canonical JSON");
    for (c = obj->child, i = 0; c; c = c->next, i++) {
        if (!c->string) {
            err = mb_error_set(MB_EINVAL, "a member of the object at %s has no name", w->path);
            goto done;
        }
        if (!utf8_valid(c->string)) {
            err = mb_error_set(MB_EINVAL,
                               "a member name of the object at %s is not valid UTF-8; "
                               "receipts hold only Unicode text",
                               w->path);
            goto done;
        }
        members[i] = c;
    }
    qsort(members, n, sizeof(*members), member_cmp);
    for (i = 1; i < n; i++) {
        if (strcmp(members[i - 1]->string, members[i]->string) == 0) {
            err = mb_error_set(MB_EINVAL,
                               "the object at %s has two members named \"%s\"; "
                               "JSON with duplicate names has no canonical form",
                               w->path, members[i]->string);
            goto done;
        }
    }
    if ((err = put(w, "{", 1)) < 0)
        goto done;
    for (i = 0; i < n; i++) {
        if (i && (err = put(w, ",", 1)) < 0)
            goto done;
        size_t mark = path_push(w, ".%s", members[i]->string, 0);
        if ((err = write_string(w, members[i]->string, "a member name")) < 0 || (err = put(w, ":", 1)) < 0 ||
            (err = write_value(w, members[i])) < 0)
            goto done;
        path_pop(w, mark);
    }
    err = put(w, "}", 1);
done:
    free(members);
    return err;
}

static int write_array(canon_writer *w, const cJSON *arr)
{
    int err = 0;
    int i = 0;

    if ((err = put(w, "[", 1)) < 0)
        return err;
    for (const cJSON *c = arr->child; c; c = c->next, i++) {
        if (i && (err = put(w, ",", 1)) < 0)
            return err;
        size_t mark = path_push(w, NULL, NULL, i);
        if ((err = write_value(w, c)) < 0)
            return err;
        path_pop(w, mark);
    }
    return put(w, "]", 1);
}

static int write_value(canon_writer *w, const cJSON *v)
{
    int err = 0;
    char num[40];

    if (++w->depth > CANON_MAX_DEPTH) {
        err = mb_error_set(MB_EINVAL, "the value at %s is nested more than %d levels deep", w->path, CANON_MAX_DEPTH);
        goto done;
    }
    switch (v->type & 0xff) {
    case cJSON_False: err = puts_(w, "false"); break;
    case cJSON_True: err = puts_(w, "true"); break;
    case cJSON_NULL: err = puts_(w, "null"); break;
    case cJSON_Number:
        if (!isfinite(v->valuedouble)) {
            err = mb_error_set(MB_EINVAL,
                               "the number at %s is not finite; JSON has no form for "
                               "NaN or infinity",
                               w->path);
            break;
        }
        format_number(num, v->valuedouble);
        err = puts_(w, num);
        break;
    case cJSON_String:
        if (!v->valuestring) {
            err = mb_error_set(MB_EINVAL, "the string at %s has no value", w->path);
            break;
        }
        err = write_string(w, v->valuestring, "the string");
        break;
    case cJSON_Array: err = write_array(w, v); break;
    case cJSON_Object: err = write_object(w, v); break;
    default:
        err = mb_error_set(MB_EINVAL,
                           "the value at %s is not plain JSON (a cJSON raw or invalid "
                           "item); build receipts from parsed or created values only",
                           w->path);
    }
done:
    w->depth--;
    return err;
}

int audit_canonical_json(char **out, size_t *len, const cJSON *value)
{
    int err = 0;
    canon_writer w = {.path = "$", .path_len = 1};

    *out = NULL;
    if (len)
        *len = 0;
    if (!value) {
        err = mb_error_set(MB_EINVAL, "no JSON value to canonicalize");
        goto done;
    }
    if ((err = write_value(&w, value)) < 0)
        goto done;
    *out = w.data;
    if (len)
        *len = w.len;
    w.data = NULL;
done:
    free(w.data);
    return err;
}

int audit_ref(char out[AUDIT_REF_SIZE], const cJSON *body)
{
    int err = 0;
    char *json = NULL;
    size_t len = 0;

    out[0] = '\0';
    if ((err = audit_canonical_json(&json, &len, body)) == 0)
        err = mb_sha256_digest(out, json, len);
    free(json);
    return err;
}
