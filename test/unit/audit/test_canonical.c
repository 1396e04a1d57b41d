/*
 * Canonical JSON (RFC 8785) and audit references: member order (nested, and
 * by UTF-16 code units for non-ASCII names), minimal string escaping, numbers
 * in ECMAScript form, empty containers, independence from construction order,
 * refusals that name the member, and SHA-256 vectors computed independently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit/canonical.h"
#include "util/text.h"
#include "util/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical form of the JSON text (parsed by cJSON). */
static char *canon_text(const char *text)
{
    cJSON *v = cJSON_Parse(text);
    char *out = NULL;
    size_t len = 0;
    if (!v)
        fail_msg("test input is not JSON: %s", text);
    if (audit_canonical_json(&out, &len, v) < 0)
        fail_msg("canonicalization failed: %s", mb_error_last());
    assert_int_equal(len, strlen(out));
    cJSON_Delete(v);
    return out;
}

static void assert_canon(const char *text, const char *want)
{
    char *got = canon_text(text);
    if (strcmp(got, want) != 0)
        fail_msg("canonical form of %s\n  got  %s\n  want %s", text, got, want);
    free(got);
}

static void assert_refused(cJSON *v, const char *needle)
{
    char *out = (char *)0x1;
    size_t len = 99;
    char ref[AUDIT_REF_SIZE] = "x";
    assert_int_equal(audit_canonical_json(&out, &len, v), MB_EINVAL);
    assert_null(out);
    assert_int_equal(len, 0);
    if (!strstr(mb_error_last(), needle))
        fail_msg("error \"%s\" does not contain \"%s\"", mb_error_last(), needle);
    assert_int_equal(audit_ref(ref, v), MB_EINVAL);
    assert_string_equal(ref, "");
}

static void test_members_sorted_nested(void **state)
{
    (void)state;
    assert_canon("{\"b\": 1, \"a\": 2, \"c\": {\"z\": 1, \"y\": [{\"d\": 1, \"c\": 2}, 3]}}",
                 "{\"a\":2,\"b\":1,\"c\":{\"y\":[{\"c\":2,\"d\":1},3],\"z\":1}}");
    /* byte order for ASCII: upper case before lower case, prefixes first */
    assert_canon("{\"ab\":0,\"a\":0,\"B\":0,\"b\":0,\"A\":0,\"_\":0,\"1\":0}",
                 "{\"1\":0,\"A\":0,\"B\":0,\"_\":0,\"a\":0,\"ab\":0,\"b\":0}");
    /* arrays keep their order */
    assert_canon("[3, 1, 2, {\"b\": [], \"a\": {}}]", "[3,1,2,{\"a\":{},\"b\":[]}]");
}

static void test_unicode_member_names(void **state)
{
    (void)state;
    /* RFC 8785 3.2.3's example: sorted by UTF-16 code units, so the emoji
     * (D83D DE00) comes before U+FB33, although its code point is larger. */
    assert_canon("{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\","
                 " \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\","
                 " \"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\","
                 " \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}",
                 "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
                 "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
                 "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
                 "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
    /* U+E000 is after every astral character (lead surrogates are D800..DBFF),
     * U+D7FF before them; two astral names compare by their trail surrogates. */
    assert_canon("{\"\\ue000\":1,\"\\ud83d\\ude01\":2,\"\\ud7ff\":3,\"\\ud83d\\ude00\":4,\"\\ud800\\udc00\":5}",
                 "{\"\xed\x9f\xbf\":3,\"\xf0\x90\x80\x80\":5,\"\xf0\x9f\x98\x80\":4,"
                 "\"\xf0\x9f\x98\x81\":2,\"\xee\x80\x80\":1}");
}

static void test_string_escaping(void **state)
{
    (void)state;
    /* only '"', '\' and controls are escaped; short forms where JSON has them,
     * lowercase \u00xx otherwise; '/', DEL and non-ASCII pass through */
    assert_canon("{\"s\": \"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001F\\u007f\\/\\u00e9\\u2028\"}",
                 "{\"s\":\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\xc3\xa9\xe2\x80\xa8\"}");
    assert_canon("{\"\\n\\\"\": \"\"}", "{\"\\n\\\"\":\"\"}");
    assert_canon("\"\\u000b\\u0000\"", "\"\\u000b\""); /* cJSON strings end at NUL */
    /* an astral character written as a surrogate pair comes out as 4 UTF-8 bytes */
    assert_canon("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
}

static void test_literals_and_empty(void **state)
{
    (void)state;
    assert_canon("{}", "{}");
    assert_canon("[]", "[]");
    assert_canon(" { \"a\" : { } , \"b\" : [ ] , \"c\" : [ { } , [ ] ] } ", "{\"a\":{},\"b\":[],\"c\":[{},[]]}");
    assert_canon("[true, false, null]", "[true,false,null]");
    assert_canon("\"\"", "\"\"");
    assert_canon("null", "null");
}

static void test_integers(void **state)
{
    (void)state;
    assert_canon("[0, -0, 1, -1, 3.0, 1e2, 42E0, 100e-2, 9007199254740991, 9007199254740992,"
                 " -9007199254740992]",
                 "[0,0,1,-1,3,100,42,1,9007199254740991,9007199254740992,-9007199254740992]");
}

/* Expected strings are JavaScript's JSON.stringify(x) for the same bit
 * pattern (node), which is what RFC 8785 prescribes; most are the RFC's own
 * Appendix B vectors. */
static void test_numbers_ecmascript_form(void **state)
{
    (void)state;
    static const struct {
        uint64_t bits;
        const char *want;
    } cases[] = {
        {0x0000000000000000ULL, "0"},
        {0x8000000000000000ULL, "0"},
        {0x0000000000000001ULL, "5e-324"},
        {0x8000000000000001ULL, "-5e-324"},
        {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
        {0x4340000000000000ULL, "9007199254740992"},
        {0xc340000000000000ULL, "-9007199254740992"},
        {0x4430000000000000ULL, "295147905179352830000"},
        {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
        {0x44b52d02c7e14af6ULL, "1e+23"},
        {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
        {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
        {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
        {0x444b1ae4d6e2ef50ULL, "1e+21"},
        {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
        {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
        {0x41b3de4355555553ULL, "333333333.3333332"},
        {0x41b3de4355555554ULL, "333333333.33333325"},
        {0x41b3de4355555555ULL, "333333333.3333333"},
        {0x41b3de4355555556ULL, "333333333.3333334"},
        {0x41b3de4355555557ULL, "333333333.33333343"},
        {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
        {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
        /* powers of two, where the nearest 16-digit decimal does not read
         * back but the one on the other side does */
        {0x0060000000000000ULL, "7.120236347223045e-307"},
        {0x0100000000000000ULL, "7.291122019556398e-304"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double d;
        char *out = NULL;
        memcpy(&d, &cases[i].bits, sizeof(d));
        cJSON *n = cJSON_CreateNumber(d);
        assert_int_equal(audit_canonical_json(&out, NULL, n), 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("bits %016llx: got %s, want %s", (unsigned long long)cases[i].bits, out, cases[i].want);
        free(out);
        cJSON_Delete(n);
    }
    /* large integers are doubles: past 2^53 they print their shortest form */
    assert_canon("[1152921504606846976, 1e20, 1e21, 0.5, -1.5, 1e-7, 1e-6, 123.456, 9007199254740994]",
                 "[1152921504606847000,100000000000000000000,1e+21,0.5,-1.5,1e-7,0.000001,123.456,"
                 "9007199254740994]");
}

static cJSON *build(int reversed)
{
    cJSON *o = cJSON_CreateObject(), *inner = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    const char *keys[] = {"zeta", "alpha", "\xc3\xa9t\xc3\xa9", "Mid", "a"};
    for (int i = 0; i < 5; i++) {
        int k = reversed ? 4 - i : i;
        cJSON_AddNumberToObject(inner, keys[k], k);
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString("x"));
    cJSON_AddItemToArray(arr, cJSON_CreateTrue());
    if (reversed) {
        cJSON_AddItemToObject(o, "object", inner);
        cJSON_AddItemToObject(o, "list", arr);
        cJSON_AddStringToObject(o, "digest", "sha256:00");
    } else {
        cJSON_AddStringToObject(o, "digest", "sha256:00");
        cJSON_AddItemToObject(o, "list", arr);
        cJSON_AddItemToObject(o, "object", inner);
    }
    return o;
}

static void test_construction_order_irrelevant(void **state)
{
    (void)state;
    cJSON *a = build(0), *b = build(1);
    char *ca = NULL, *cb = NULL, *plain = NULL;
    size_t la = 0, lb = 0;
    char ra[AUDIT_REF_SIZE], rb[AUDIT_REF_SIZE];

    /* the trees really differ in order: cJSON's own printing shows it */
    plain = cJSON_PrintUnformatted(a);
    char *plain_b = cJSON_PrintUnformatted(b);
    assert_string_not_equal(plain, plain_b);
    free(plain_b);

    assert_int_equal(audit_canonical_json(&ca, &la, a), 0);
    assert_int_equal(audit_canonical_json(&cb, &lb, b), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ca, cb, la);
    assert_string_equal(ca, "{\"digest\":\"sha256:00\",\"list\":[\"x\",true],"
                            "\"object\":{\"Mid\":3,\"a\":4,\"alpha\":1,\"zeta\":0,\"\xc3\xa9t\xc3\xa9\":2}}");
    assert_int_equal(audit_ref(ra, a), 0);
    assert_int_equal(audit_ref(rb, b), 0);
    assert_string_equal(ra, rb);
    assert_true(mb_sha256_digest_valid(ra));

    /* and a one-character change gives a different ref */
    cJSON_ReplaceItemInObjectCaseSensitive(b, "digest", cJSON_CreateString("sha256:01"));
    assert_int_equal(audit_ref(rb, b), 0);
    assert_string_not_equal(ra, rb);

    free(plain);
    free(ca);
    free(cb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/*
 * Expected digests computed once, independently of this code, with Python 3:
 *   c = json.dumps(json.loads(TEXT), sort_keys=True, separators=(",", ":"),
 *                  ensure_ascii=False).encode()
 *   hashlib.sha256(c).hexdigest()
 * Python agrees with RFC 8785 on these inputs (integers within 2^53, BMP
 * member names below U+D800); it differs on floats and astral names.
 */
static void test_sha256_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *canonical;
        const char *ref;
    } cases[] = {
        {"{}", "{}", "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
        {"{\"releaseID\":\"3f9c0a1b2c4d\",\"generation\":3,"
         "\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
         "\"previousDigest\":\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
         "\"outcome\":\"RolledBack\",\"trigger\":\"SmokeFailure\",\"startedAt\":\"2026-11-22T10:00:00Z\","
         "\"finishedAt\":\"2026-11-22T10:04:31Z\",\"prevAuditRef\":\"\",\"object\":{\"uid\":"
         "\"6c1f2e0a-8d55-4b8e-9a51-0f3c2d9e7b10\",\"name\":\"kfm-api\",\"namespace\":\"kfm\","
         "\"kind\":\"GovernedAPIRelease\",\"apiGroup\":\"governance.kfm.dev\"}}",
         "{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
         "\"finishedAt\":\"2026-11-22T10:04:31Z\",\"generation\":3,\"object\":{\"apiGroup\":"
         "\"governance.kfm.dev\",\"kind\":\"GovernedAPIRelease\",\"name\":\"kfm-api\",\"namespace\":"
         "\"kfm\",\"uid\":\"6c1f2e0a-8d55-4b8e-9a51-0f3c2d9e7b10\"},\"outcome\":\"RolledBack\","
         "\"prevAuditRef\":\"\",\"previousDigest\":"
         "\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
         "\"releaseID\":\"3f9c0a1b2c4d\",\"startedAt\":\"2026-11-22T10:00:00Z\","
         "\"trigger\":\"SmokeFailure\"}",
         "sha256:86eaa461fa1bf9683c7a297eed71c632edc3272cd1ae938bab00ae90fefa841c"},
        {"{\"\\u00f6\":\"\\u00dcn\\u00efc\\u00f8d\\u00e9 \\u2713 \\\"q\\\" \\\\ \\/ \\n\\t\\u0001"
         "\\u001f\\u007f\\u2028\",\"a\":[1,-2,true,false,null,{},[]],\"\\u00e9\":{\"z\":[],"
         "\"b\":\"x/y\",\"B\":0,\"\":-9007199254740992}}",
         "{\"a\":[1,-2,true,false,null,{},[]],\"\xc3\xa9\":{\"\":-9007199254740992,\"B\":0,"
         "\"b\":\"x/y\",\"z\":[]},\"\xc3\xb6\":\"\xc3\x9cn\xc3\xaf"
         "c\xc3\xb8"
         "d\xc3\xa9 \xe2\x9c\x93 "
         "\\\"q\\\" \\\\ / \\n\\t\\u0001\\u001f\x7f\xe2\x80\xa8\"}",
         "sha256:18bf92ff8126267ff1e80f025205e5f76bd2881bc6825062facb869969f21cc1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *v = cJSON_Parse(cases[i].text);
        char ref[AUDIT_REF_SIZE];
        char *c = canon_text(cases[i].text);
        assert_non_null(v);
        assert_string_equal(c, cases[i].canonical);
        assert_int_equal(audit_ref(ref, v), 0);
        assert_string_equal(ref, cases[i].ref);
        free(c);
        cJSON_Delete(v);
    }
}

static void test_refusals_name_the_member(void **state)
{
    (void)state;
    cJSON *v;

    v = cJSON_Parse("{\"a\": {\"list\": [1, \"ok\", \"x\"]}}");
    cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(v, "a"), "list");
    cJSON_ReplaceItemInArray(arr, 2, cJSON_CreateString("bad \xc3\x28 utf-8"));
    assert_refused(v, "$.a.list[2] is not valid UTF-8");
    cJSON_Delete(v);

    /* overlong encodings and UTF-8-encoded surrogates are not valid UTF-8 either */
    v = cJSON_CreateString("\xc0\xaf");
    assert_refused(v, "$ is not valid UTF-8");
    cJSON_Delete(v);
    v = cJSON_CreateString("\xed\xa0\x80");
    assert_refused(v, "not valid UTF-8");
    cJSON_Delete(v);
    v = cJSON_CreateString("\xf4\x90\x80\x80"); /* past U+10FFFF */
    assert_refused(v, "not valid UTF-8");
    cJSON_Delete(v);

    v = cJSON_CreateObject();
    cJSON_AddObjectToObject(v, "inner");
    cJSON_AddNumberToObject(cJSON_GetObjectItem(v, "inner"), "\xff", 1);
    assert_refused(v, "member name of the object at $.inner is not valid UTF-8");
    cJSON_Delete(v);

    v = cJSON_Parse("{\"status\": {\"digest\": \"a\", \"digest\": \"b\"}}");
    assert_non_null(v);
    assert_refused(v, "the object at $.status has two members named \"digest\"");
    cJSON_Delete(v);

    v = cJSON_CreateArray();
    cJSON_AddItemToArray(v, cJSON_CreateNumber(NAN));
    assert_refused(v, "the number at $[0] is not finite");
    cJSON_Delete(v);
    v = cJSON_CreateNumber(INFINITY);
    assert_refused(v, "not finite");
    cJSON_Delete(v);

    v = cJSON_CreateObject();
    cJSON_AddRawToObject(v, "raw", "{\"b\":1}");
    assert_refused(v, "$.raw is not plain JSON");
    cJSON_Delete(v);

    assert_int_equal(audit_canonical_json(&(char *){NULL}, NULL, NULL), MB_EINVAL);
}

static void test_ref_valid(void **state)
{
    (void)state;
    assert_true(mb_sha256_digest_valid("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"));
    assert_false(mb_sha256_digest_valid(NULL));
    assert_false(mb_sha256_digest_valid(""));
    assert_false(mb_sha256_digest_valid("sha256:"));
    assert_false(mb_sha256_digest_valid("sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A"));
    assert_false(mb_sha256_digest_valid("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8"));
    assert_false(mb_sha256_digest_valid("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a0"));
    assert_false(mb_sha256_digest_valid("sha512:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"));
    assert_false(mb_sha256_digest_valid("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8g"));
    assert_false(mb_sha256_digest_valid(" sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_sorted_nested),
        cmocka_unit_test(test_unicode_member_names),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_literals_and_empty),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_numbers_ecmascript_form),
        cmocka_unit_test(test_construction_order_irrelevant),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_refusals_name_the_member),
        cmocka_unit_test(test_ref_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
