/*
 * JSON read as Go's encoding/json (OPA, cosign) reads it, into cJSON: a validator
 * over the text first (structure, tokens, escapes, number grammar, nesting),
 * then cJSON's parse, which after validation can fail only for memory. With
 * keep_numbers every number becomes a cJSON_Raw holding its literal, matched
 * to cJSON's number nodes in document order.
 */
#include "util/gojson.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Deeper nesting is refused before cJSON (whose limit is 1000) sees it. */
#define JSON_MAX_DEPTH 512
/* cJSON 1.7 reads a number through a 64-byte buffer: longer literals are refused first. */
#define JSON_MAX_NUMBER 63

/* The length of the number literal at s (at most n bytes) if it follows the JSON grammar, else 0. */
static size_t json_number(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i;
}

typedef struct {
    const unsigned char *text;
    size_t *at, *len; /* the number literals, in document order */
    size_t n, cap, next;
} number_list;

static int number_add(number_list *nums, size_t at, size_t len)
{
    if (nums->n == nums->cap) {
        size_t cap = nums->cap ? nums->cap * 2 : 16;
        size_t *a = realloc(nums->at, cap * sizeof(*a));
        if (!a)
            return MB_ENOMEM;
        nums->at = a;
        size_t *l = realloc(nums->len, cap * sizeof(*l));
        if (!l)
            return MB_ENOMEM;
        nums->len = l;
        nums->cap = cap;
    }
    nums->at[nums->n] = at;
    nums->len[nums->n++] = len;
    return 0;
}

static int hex4(const unsigned char *s, size_t n, unsigned *v)
{
    *v = 0;
    if (n < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? c - '0'
                     : c >= 'a' && c <= 'f' ? c - 'a' + 10
                     : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                            : 16;
        if (d > 15)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* The string at t[*i] (on its opening quote): JSON's escapes, no raw control bytes, surrogates in pairs as cJSON wants them. */
static bool json_string(const unsigned char *t, size_t n, size_t *i)
{
    for (size_t k = *i + 1; k < n; k++) {
        unsigned char c = t[k];
        if (c < 0x20)
            return false;
        if (c == '"') {
            *i = k + 1;
            return true;
        }
        if (c != '\\')
            continue;
        if (++k >= n)
            return false;
        if (strchr("\"\\/bfnrt", t[k]) && t[k])
            continue;
        unsigned u, lo;
        if (t[k] != 'u' || hex4(t + k + 1, n - k - 1, &u) < 0)
            return false;
        k += 4;
        if (u >= 0xdc00 && u <= 0xdfff)
            return false;
        if (u >= 0xd800 && u <= 0xdbff) {
            if (n - k < 7 || t[k + 1] != '\\' || t[k + 2] != 'u' || hex4(t + k + 3, n - k - 3, &lo) < 0 ||
                lo < 0xdc00 || lo > 0xdfff)
                return false;
            k += 6;
        }
    }
    return false;
}

/*
 * Validates t[0..n) as exactly one JSON value, as Go's encoding/json reads
 * it (and within what cJSON can hold), collecting the number literals into
 * nums when it is not NULL. 0, MB_EINVAL or MB_ENOMEM (nums).
 */
static int json_validate(const unsigned char *t, size_t n, number_list *nums)
{
    unsigned char stack[JSON_MAX_DEPTH]; /* '{' or '[' */
    int depth = 0;
    size_t i = 0;
    enum { VALUE, AFTER_VALUE, KEY, COLON, FIRST_KEY, FIRST_VALUE } want = VALUE;

    for (;;) {
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n'))
            i++;
        if (want == AFTER_VALUE && depth == 0)
            return i == n ? 0 : MB_EINVAL;
        if (i >= n)
            return MB_EINVAL;
        unsigned char c = t[i];
        switch (want) {
        case FIRST_KEY:
            if (c == '}') {
                i++, depth--, want = AFTER_VALUE;
                break;
            }
            /* fall through */
        case KEY:
            if (c != '"' || !json_string(t, n, &i))
                return MB_EINVAL;
            want = COLON;
            break;
        case COLON:
            if (c != ':')
                return MB_EINVAL;
            i++, want = VALUE;
            break;
        case AFTER_VALUE:
            if (c == ',') {
                i++, want = stack[depth - 1] == '{' ? KEY : VALUE;
            } else if (c == (stack[depth - 1] == '{' ? '}' : ']')) {
                i++, depth--;
            } else {
                return MB_EINVAL;
            }
            break;
        case FIRST_VALUE:
            if (c == ']') {
                i++, depth--, want = AFTER_VALUE;
                break;
            }
            /* fall through */
        case VALUE:
            if (c == '{' || c == '[') {
                if (depth >= JSON_MAX_DEPTH)
                    return MB_EINVAL;
                stack[depth++] = c;
                i++, want = c == '{' ? FIRST_KEY : FIRST_VALUE;
                break;
            }
            want = AFTER_VALUE;
            if (c == '"') {
                if (!json_string(t, n, &i))
                    return MB_EINVAL;
            } else if (c == 't' || c == 'f' || c == 'n') {
                const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
                size_t l = strlen(lit);
                if (n - i < l || memcmp(t + i, lit, l) != 0)
                    return MB_EINVAL;
                i += l;
            } else {
                size_t l = json_number(t + i, n - i);
                /* a literal must end where cJSON's greedy read of [0-9+-.eE] ends */
                if (l == 0 || l > JSON_MAX_NUMBER || (i + l < n && strchr("0123456789+-.eE", t[i + l]) && t[i + l]))
                    return MB_EINVAL;
                if (nums && number_add(nums, i, l) < 0)
                    return MB_ENOMEM;
                i += l;
            }
            break;
        }
    }
}

/* Turns the numbers of v, in document order, into raw literals from nums. */
static int json_keep_numbers(cJSON *v, number_list *nums)
{
    for (; v; v = v->next) {
        if (cJSON_IsNumber(v)) {
            if (nums->next >= nums->n)
                return MB_EINVAL;
            char *lit = strndup((const char *)nums->text + nums->at[nums->next], nums->len[nums->next]);
            if (!lit)
                return MB_ENOMEM;
            nums->next++;
            v->type = cJSON_Raw;
            v->valuestring = lit;
        } else if (v->child) {
            int rc = json_keep_numbers(v->child, nums);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int mb_gojson_parse(cJSON **out, const unsigned char *text, size_t len, bool keep_numbers)
{
    number_list nums = {.text = text};
    cJSON *doc = NULL;
    int rc = 0;

    *out = NULL;
    if ((rc = json_validate(text, len, keep_numbers ? &nums : NULL)) < 0) {
        rc = rc == MB_ENOMEM ? mb_error_set(MB_ENOMEM, "out of memory") : mb_error_set(MB_EINVAL, "not valid JSON");
        goto done;
    }
    /* valid, so cJSON can fail only for memory */
    if (!(doc = cJSON_ParseWithLength((const char *)text, len))) {
        rc = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (keep_numbers && ((rc = json_keep_numbers(doc, &nums)) < 0 || nums.next != nums.n)) {
        rc = rc == MB_ENOMEM ? mb_error_set(MB_ENOMEM, "out of memory")
                             : mb_error_set(MB_ERROR, "cJSON and the validator disagree on the numbers");
        goto done;
    }
    *out = doc;
    doc = NULL;
done:
    free(nums.at);
    free(nums.len);
    cJSON_Delete(doc);
    return rc;
}
