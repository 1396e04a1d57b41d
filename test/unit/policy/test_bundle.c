/*
 * The bundle reader (policy/bundle.h): every structure rule with an archive
 * written in the test by libarchive, the manifest, the roots and the decision
 * judge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "policy/bundle.h"
#include "tarball.h"
#include "util/error.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UNPACKED (1LL << 20)
#define MANIFEST "{\"revision\":\"2026.11.20-3\",\"roots\":[\"kfm\"]}"
#define POLICY "package kfm\n\nallow if input.role == \"admin\"\n"

static bundle *read_ok(const tar_entry *entries, size_t n, tarball_kind kind)
{
    unsigned char *gz = NULL;
    size_t len = 0;
    bundle *b = NULL;
    char err[BUNDLE_ERROR_MAX];
    tarball_make(&gz, &len, entries, n, kind);
    int rc = bundle_read(&b, gz, len, MAX_UNPACKED, err);
    if (rc != 0)
        fail_msg("bundle_read: %d %s", rc, err);
    free(gz);
    assert_non_null(b);
    return b;
}

/* Reads an archive that must be refused with a message holding needle. */
static void read_bad_max(const tar_entry *entries, size_t n, tarball_kind kind, long long max, const char *needle)
{
    unsigned char *gz = NULL;
    size_t len = 0;
    bundle *b = (bundle *)1;
    char err[BUNDLE_ERROR_MAX];
    tarball_make(&gz, &len, entries, n, kind);
    int rc = bundle_read(&b, gz, len, max, err);
    free(gz);
    assert_null(b);
    if (rc != MB_EINVAL)
        fail_msg("bundle_read returned %d (%s), not MB_EINVAL, for \"%s\"", rc, err, needle);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static void read_bad(const tar_entry *entries, size_t n, const char *needle)
{
    read_bad_max(entries, n, TARBALL_GZIP_PAX, MAX_UNPACKED, needle);
}

#define F(n, d)                                                                                                        \
    {                                                                                                                  \
        .name = (n), .data = (d)                                                                                       \
    }
#define FL(n, d, l)                                                                                                    \
    {                                                                                                                  \
        .name = (n), .data = (d), .len = (l)                                                                           \
    }
#define D(n)                                                                                                           \
    {                                                                                                                  \
        .name = (n), .type = TAR_DIR                                                                                   \
    }
#define L(n, t, l)                                                                                                     \
    {                                                                                                                  \
        .name = (n), .type = (t), .link = (l)                                                                          \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_reads_opa_names(void **state)
{
    (void)state;
    /* as `opa build` writes them: every name with a leading "/" */
    const tar_entry e[] = {
        F("/data.json", "{\"kfm\":{\"labels\":[\"public\"]}}"),
        F("/kfm/policy.rego", POLICY),
        F("/.manifest", MANIFEST),
    };
    bundle *b = read_ok(e, N(e), TARBALL_GZIP_PAX);
    assert_int_equal(b->nfiles, 3);
    assert_string_equal(b->files[0].name, "data.json");
    assert_string_equal(b->files[1].name, "kfm/policy.rego");
    assert_string_equal(b->files[2].name, ".manifest");
    assert_int_equal(b->files[1].len, strlen(POLICY));
    assert_memory_equal(b->files[1].data, POLICY, strlen(POLICY));
    assert_int_equal(b->files[1].data[b->files[1].len], '\0');
    assert_string_equal(b->revision, "2026.11.20-3");
    assert_int_equal(cJSON_GetArraySize(b->roots), 1);
    assert_string_equal(cJSON_GetArrayItem(b->roots, 0)->valuestring, "kfm");
    assert_int_equal(b->rego_modules, 1);
    assert_int_equal(b->unpacked_bytes, strlen(e[0].data) + strlen(POLICY) + strlen(MANIFEST));
    assert_ptr_equal(b->manifest, &b->files[2]);
    assert_null(b->signatures);
    assert_ptr_equal(bundle_find(b, "kfm/policy.rego"), &b->files[1]);
    assert_null(bundle_find(b, "/kfm/policy.rego"));
    assert_null(bundle_find(b, "policy.rego"));
    bundle_free(b);
}

static void test_reads_relative_and_dot_names(void **state)
{
    (void)state;
    /* as `tar -C dir .` writes them, directories included, and ustar */
    const tar_entry e[] = {
        D("./"),
        F("./.manifest", "{}"),
        D("./kfm/"),
        F("./kfm/policy.rego", POLICY),
        F("kfm/sub/data.json", "{}"),
        F(".signatures.json", "{\"signatures\":[]}"),
    };
    bundle *b = read_ok(e, N(e), TARBALL_GZIP_USTAR);
    assert_int_equal(b->nfiles, 4);
    assert_string_equal(b->files[0].name, ".manifest");
    assert_string_equal(b->files[1].name, "kfm/policy.rego");
    assert_string_equal(b->files[2].name, "kfm/sub/data.json");
    assert_ptr_equal(b->signatures, &b->files[3]);
    /* no revision, no roots: "" and [""] */
    assert_string_equal(b->revision, "");
    assert_int_equal(cJSON_GetArraySize(b->roots), 1);
    assert_string_equal(cJSON_GetArrayItem(b->roots, 0)->valuestring, "");
    bundle_free(b);
}

static void test_utf8_names(void **state)
{
    (void)state;
    /* pax keeps UTF-8 names; written in a UTF-8 locale, read in "C", where membrane runs */
    const tar_entry e[] = {F("/.manifest", "{}"), F("/kfm/r\xc3\xa9gion.rego", POLICY),
                           F("/kfm/\xe6\x95\xb0\xe6\x8d\xae/data.json", "{}")};
    unsigned char *gz = NULL;
    size_t len = 0;
    bundle *b = NULL;
    char err[BUNDLE_ERROR_MAX];
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        skip();
    tarball_make(&gz, &len, e, N(e), TARBALL_GZIP_PAX);
    setlocale(LC_CTYPE, "C");
    if (bundle_read(&b, gz, len, MAX_UNPACKED, err) != 0)
        fail_msg("bundle_read: %s", err);
    assert_string_equal(b->files[1].name, "kfm/r\xc3\xa9gion.rego");
    assert_string_equal(b->files[2].name, "kfm/\xe6\x95\xb0\xe6\x8d\xae/data.json");
    bundle_free(b);
    free(gz);
}

static void test_refuses_absolute(void **state)
{
    (void)state;
    const tar_entry e[] = {F("/.manifest", "{}"), F("/p.rego", POLICY), F("//etc/passwd", "root")};
    read_bad(e, N(e), "entry //etc/passwd: an absolute path is not allowed");
}

static void test_refuses_dotdot(void **state)
{
    (void)state;
    const tar_entry e1[] = {F(".manifest", "{}"), F("p.rego", POLICY), F("../etc/passwd", "root")};
    read_bad(e1, N(e1), "entry ../etc/passwd: a path with .. is not allowed");
    const tar_entry e2[] = {F(".manifest", "{}"), F("p.rego", POLICY), F("/kfm/../../x.rego", POLICY)};
    read_bad(e2, N(e2), "entry /kfm/../../x.rego: a path with .. is not allowed");
    const tar_entry e3[] = {F(".manifest", "{}"), F("p.rego", POLICY), D("kfm/..")};
    read_bad(e3, N(e3), "entry kfm/..");
    const tar_entry e4[] = {F(".manifest", "{}"), F("p.rego", POLICY), F("kfm//x.rego", POLICY)};
    read_bad(e4, N(e4), "entry kfm//x.rego: an empty or \".\" path segment is not allowed");
}

static void test_refuses_links_and_devices(void **state)
{
    (void)state;
    const tar_entry e1[] = {F(".manifest", "{}"), F("p.rego", POLICY), L("data.json", TAR_SYMLINK, "/etc/x")};
    read_bad(e1, N(e1), "entry data.json: a symlink is not allowed");
    const tar_entry e2[] = {F(".manifest", "{}"), F("p.rego", POLICY), L("q.rego", TAR_HARDLINK, "p.rego")};
    read_bad(e2, N(e2), "entry q.rego: a hardlink is not allowed");
    const tar_entry e3[] = {F(".manifest", "{}"), F("p.rego", POLICY), L("dev/tty", TAR_CHARDEV, NULL)};
    read_bad(e3, N(e3), "entry dev/tty: a device is not allowed");
    const tar_entry e4[] = {F(".manifest", "{}"), F("p.rego", POLICY), L("pipe", TAR_FIFO, NULL)};
    read_bad(e4, N(e4), "entry pipe: a fifo is not allowed");
}

static void test_refuses_oversize(void **state)
{
    (void)state;
    size_t big = 300000;
    char *zeros = calloc(1, big);
    memset(zeros, 'a', big);
    const tar_entry e[] = {F(".manifest", "{}"), F("p.rego", POLICY), FL("big.json", zeros, big),
                           FL("more.json", zeros, big)};
    /* the total, not one file, passes the limit; a limit just above it is fine */
    read_bad_max(e, N(e), TARBALL_GZIP_PAX, 500000, "entry more.json: the bundle unpacks to more than 500000 bytes");
    unsigned char *gz = NULL;
    size_t len = 0;
    bundle *b = NULL;
    char err[BUNDLE_ERROR_MAX];
    tarball_make(&gz, &len, e, N(e), TARBALL_GZIP_PAX);
    long long total = 2 + (long long)strlen(POLICY) + 2 * (long long)big;
    assert_int_equal(bundle_read(&b, gz, len, total, err), 0);
    assert_int_equal(b->unpacked_bytes, total);
    bundle_free(b);
    assert_int_equal(bundle_read(&b, gz, len, total - 1, err), MB_EINVAL);
    assert_null(b);
    free(gz);
    free(zeros);
}

static void test_refuses_other_formats(void **state)
{
    (void)state;
    const tar_entry e[] = {F(".manifest", "{}"), F("p.rego", POLICY)};
    read_bad_max(e, N(e), TARBALL_PLAIN_TAR, MAX_UNPACKED, "not a gzip tar");
    read_bad_max(e, N(e), TARBALL_ZIP, MAX_UNPACKED, "not a gzip tar");
    read_bad_max(e, N(e), TARBALL_GZIP_ZIP, MAX_UNPACKED, "not a gzip tar");

    bundle *b = (bundle *)1;
    char err[BUNDLE_ERROR_MAX];
    assert_int_equal(bundle_read(&b, "", 0, MAX_UNPACKED, err), MB_EINVAL);
    assert_null(b);
    assert_non_null(strstr(err, "not a gzip tar"));
    const unsigned char junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 'n', 'o', 't', ' ', 'd', 'e', 'f', 'l'};
    assert_int_equal(bundle_read(&b, junk, sizeof(junk), MAX_UNPACKED, err), MB_EINVAL);
    assert_null(b);
    /* a gzip tar cut short */
    unsigned char *gz = NULL;
    size_t len = 0;
    tarball_make(&gz, &len, e, N(e), TARBALL_GZIP_PAX);
    assert_int_equal(bundle_read(&b, gz, len / 2, MAX_UNPACKED, err), MB_EINVAL);
    assert_null(b);
    free(gz);
}

/* Every byte of the deflate stream corrupted in turn: refused as input (or read, if it still makes sense), never "out of memory". */
static void test_corrupt_stream(void **state)
{
    (void)state;
    const tar_entry e[] = {F("/data.json", "{\"kfm\":{\"labels\":[\"public\"]}}"), F("/kfm/policy.rego", POLICY),
                           F("/.manifest", MANIFEST)};
    unsigned char *gz = NULL;
    size_t len = 0;
    tarball_make(&gz, &len, e, N(e), TARBALL_GZIP_PAX);
    int refused = 0;
    for (size_t i = 10; i < len; i++) {
        for (unsigned flip = 1; flip < 256; flip <<= 3) {
            bundle *b = NULL;
            char err[BUNDLE_ERROR_MAX];
            gz[i] ^= (unsigned char)flip;
            int rc = bundle_read(&b, gz, len, MAX_UNPACKED, err);
            gz[i] ^= (unsigned char)flip;
            if (rc != 0 && rc != MB_EINVAL)
                fail_msg("byte %zu ^ %u: bundle_read returned %d (%s)", i, flip, rc, err);
            if (rc == MB_EINVAL && !err[0])
                fail_msg("byte %zu ^ %u: refused without a message", i, flip);
            refused += rc == MB_EINVAL;
            bundle_free(b);
        }
    }
    assert_true(refused > 0);
    free(gz);
}

static void test_manifest_rules(void **state)
{
    (void)state;
    const tar_entry none[] = {F("p.rego", POLICY), F("data.json", "{}")};
    read_bad(none, N(none), ".manifest is missing");
    const tar_entry pb[] = {F("p.rego", POLICY), F(".manifest.pb", "\x0a\x01x")};
    read_bad(pb, N(pb), ".manifest is missing (a protobuf .manifest.pb is not supported)");

    struct {
        const char *manifest, *needle;
    } bad[] = {
        {"[]", ".manifest must be a JSON object"},
        {"\"kfm\"", ".manifest must be a JSON object"},
        {"{", ".manifest is not valid JSON"},
        {"{} {}", ".manifest is not valid JSON"},
        {"{\"revision\":01}", ".manifest is not valid JSON"},
        {"{\"revision\":\"a\tb\"}", ".manifest is not valid JSON"},
        {"{\"roots\":[\"a\"],\"roots\":[\"b\"]}", ".manifest: member roots appears more than once"},
        {"", ".manifest is not valid JSON"},
        {"{\"revision\":3}", ".manifest: revision must be a string"},
        {"{\"revision\":[\"a\"]}", ".manifest: revision must be a string"},
        {"{\"roots\":\"kfm\"}", ".manifest: roots must be an array of strings"},
        {"{\"roots\":[\"kfm\",1]}", ".manifest: roots[1] must be a string"},
        {"{\"roots\":[\"kfm\",\"kfm/data\"]}", ".manifest: roots \"kfm\" and \"kfm/data\" overlap"},
        {"{\"roots\":[\"\",\"kfm\"]}", "overlap"},
        {"{\"revision\":\"a\",\"revision\":\"b\"}", ".manifest: member revision appears more than once"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        const tar_entry e[] = {F("p.rego", POLICY), F(".manifest", bad[i].manifest)};
        read_bad(e, N(e), bad[i].needle);
    }

    /* null is absent; trailing whitespace is fine; unknown members are OPA's business */
    const tar_entry ok[] = {F("p.rego", POLICY),
                            F(".manifest",
                              "{\"revision\":null,\"roots\":null,\"metadata\":{\"a\":1},\"rego_version\":1}\n")};
    bundle *b = read_ok(ok, N(ok), TARBALL_GZIP_PAX);
    assert_string_equal(b->revision, "");
    assert_string_equal(cJSON_GetArrayItem(b->roots, 0)->valuestring, "");
    bundle_free(b);

    /* OPA reads any file ending in .manifest as one */
    const tar_entry nested[] = {F("p.rego", POLICY), F(".manifest", "{}"), F("kfm/.manifest", "{}")};
    read_bad(nested, N(nested), "entry kfm/.manifest: only the bundle root may hold a .manifest");
}

static void test_needs_rego(void **state)
{
    (void)state;
    const tar_entry e[] = {F(".manifest", "{}"), F("data.json", "{}"), F("policy.rego.txt", POLICY)};
    read_bad(e, N(e), "the bundle has no .rego file");
}

static void test_data_files(void **state)
{
    (void)state;
    struct {
        const char *name, *text, *needle;
    } bad[] = {
        {"data.json", "[1,2]", "data.json must hold a JSON object"},
        {"kfm/data.json", "{\"a\":", "kfm/data.json is not valid JSON"},
        {"kfm/x/data.json", "{} x", "kfm/x/data.json is not valid JSON"},
        {"data.json", "", "data.json is not valid JSON"},
        {"kfm/data.yaml", "- a\n- b\n", "kfm/data.yaml must hold a JSON object"},
        {"data.yml", "a: [\n", "data.yml is not valid YAML"},
        /* JSON as Go reads it, within what cJSON holds */
        {"data.json", "{\"a\":\"\\ud800\"}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":\"\\x41\"}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":\"\x01\"}", "data.json is not valid JSON"},
        {"data.json", "\xef\xbb\xbf{}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":1.}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":-}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":1,}", "data.json is not valid JSON"},
        {"data.json", "{\"a\" 1}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":[1 2]}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":tru}", "data.json is not valid JSON"},
        {"data.json", "{\"a\":1}\f", "data.json is not valid JSON"},
        {"data.json", "{\"a\":1234567890123456789012345678901234567890123456789012345678901234}",
         "data.json is not valid JSON"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        const tar_entry e[] = {F(".manifest", "{}"), F("p.rego", POLICY), F(bad[i].name, bad[i].text)};
        read_bad(e, N(e), bad[i].needle);
    }
    /* a data.yaml mapping is data as OPA reads it; other .json files are not data files */
    const tar_entry ok[] = {F(".manifest", "{}"), F("p.rego", POLICY), F("kfm/data.yaml", "labels:\n  - public\n"),
                            F("kfm/schema.json", "[not json at all"), F("kfm/mydata.json", "3")};
    bundle *b = read_ok(ok, N(ok), TARBALL_GZIP_PAX);
    assert_int_equal(b->nfiles, 5);
    bundle_free(b);

    /* nesting: 512 deep is read, 513 is refused */
    char deep[2048];
    for (int depth = 512; depth <= 513; depth++) {
        size_t n = 0;
        n += (size_t)sprintf(deep + n, "{\"a\":");
        for (int i = 1; i < depth; i++)
            deep[n++] = '[';
        deep[n++] = '1';
        for (int i = 1; i < depth; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        const tar_entry d[] = {F(".manifest", "{}"), F("p.rego", POLICY), F("data.json", deep)};
        if (depth == 512) {
            b = read_ok(d, N(d), TARBALL_GZIP_PAX);
            bundle_free(b);
        } else {
            read_bad(d, N(d), "data.json is not valid JSON");
        }
    }
    /* what Go accepts and cJSON reads alike: escapes, pairs, exponents, a number 63 long */
    const tar_entry fine[] = {F(".manifest", "{}"), F("p.rego", POLICY),
                              F("data.json",
                                " {\"a\":\"\\ud83d\\ude00 \\u00e9 \\/ \\b\",\"b\":[-0.5e-3,0,1E+2,{}],\"c\":"
                                "123456789012345678901234567890123456789012345678901234567890123}\r\n")};
    b = read_ok(fine, N(fine), TARBALL_GZIP_PAX);
    bundle_free(b);
}

static void test_refuses_duplicates(void **state)
{
    (void)state;
    const tar_entry e1[] = {F(".manifest", "{}"), F("p.rego", POLICY), F("p.rego", "package evil\n")};
    read_bad(e1, N(e1), "entry p.rego: the bundle holds it more than once");
    /* "/x" and "./x" and "x" are one file */
    const tar_entry e2[] = {F("/.manifest", "{}"), F("/kfm/p.rego", POLICY), F("./kfm/p.rego", POLICY)};
    read_bad(e2, N(e2), "entry kfm/p.rego: the bundle holds it more than once");
    const tar_entry e3[] = {F("/.manifest", "{}"), F("p.rego", POLICY), F(".manifest", "{\"roots\":[\"x\"]}")};
    read_bad(e3, N(e3), "entry .manifest: the bundle holds it more than once");
}

static void test_missing_root(void **state)
{
    (void)state;
    const tar_entry e[] = {F(".manifest", "{\"roots\":[\"kfm/policy\",\"/other/\",\"a/b\"]}"), F("p.rego", POLICY)};
    bundle *b = read_ok(e, N(e), TARBALL_GZIP_PAX);
    struct {
        const char *required, *missing;
    } cases[] = {
        {"[\"kfm/policy\"]", NULL},
        {"[\"kfm/policy/allow\"]", NULL},   /* a root covers its descendants */
        {"[\"other\", \"/a/b/c/\"]", NULL}, /* OPA trims "/" from roots */
        {"[\"kfm\"]", "kfm"},               /* not its ancestors */
        {"[\"kfm/pol\"]", "kfm/pol"},       /* segment by segment, not by prefix */
        {"[\"kfm/policyx\"]", "kfm/policyx"},
        {"[\"other\", \"a\"]", "a"},
        {"[\"\"]", ""},
        {"[]", NULL},
    };
    for (size_t i = 0; i < N(cases); i++) {
        cJSON *req = cJSON_Parse(cases[i].required);
        const char *m = bundle_missing_root(b, req);
        if (cases[i].missing)
            assert_string_equal(m, cases[i].missing);
        else if (m)
            fail_msg("%s: %s reported missing", cases[i].required, m);
        cJSON_Delete(req);
    }
    bundle_free(b);

    /* the default root "" covers everything, "" included */
    const tar_entry d[] = {F(".manifest", "{}"), F("p.rego", POLICY)};
    b = read_ok(d, N(d), TARBALL_GZIP_PAX);
    cJSON *req = cJSON_Parse("[\"kfm\", \"a/b/c\", \"\"]");
    assert_null(bundle_missing_root(b, req));
    cJSON_Delete(req);
    req = cJSON_Parse("[3]");
    assert_non_null(bundle_missing_root(b, req));
    cJSON_Delete(req);
    bundle_free(b);
}

static void check_decision(const char *body, const char *expect, bool match, const char *got_text)
{
    cJSON *want = expect ? cJSON_Parse(expect) : NULL;
    char *got = (char *)1;
    if (expect)
        assert_non_null(want);
    bool m = bundle_decision_matches(body, body ? strlen(body) : 0, want, &got);
    if (m != match)
        fail_msg("%s vs %s: %s", body, expect, m ? "matched" : "did not match");
    if (got_text)
        assert_string_equal(got, got_text);
    else
        assert_null(got);
    free(got);
    assert_int_equal(bundle_decision_matches(body, body ? strlen(body) : 0, want, NULL), match);
    cJSON_Delete(want);
}

static void test_decision_matches(void **state)
{
    (void)state;
    check_decision("{\"result\":false}", "false", true, "false");
    check_decision("{\"result\":true}", "false", false, "true");
    check_decision("{\"result\":null}", "null", true, "null");
    check_decision("{\"result\":0}", "false", false, "0");
    check_decision("{\"result\":1.0}", "1", true, "1");
    check_decision("{\"result\":1e2}", "100", true, "100");
    check_decision("{\"result\":1}", "\"1\"", false, "1");
    check_decision("{\"result\":\"a\"}", "\"a\"", true, "\"a\"");
    check_decision("{\"result\":{\"b\":[1,2],\"a\":{\"x\":true}}}", "{\"a\":{\"x\":true},\"b\":[1.0,2]}", true,
                   "{\"b\":[1,2],\"a\":{\"x\":true}}");
    check_decision("{\"result\":[1,2]}", "[2,1]", false, "[1,2]");
    check_decision("{\"result\":{\"a\":1}}", "{\"a\":1,\"b\":2}", false, "{\"a\":1}");
    check_decision("{\"result\":{\"a\":1,\"b\":2}}", "{\"a\":1}", false, "{\"a\":1,\"b\":2}");
    check_decision("{\"result\":{\"a\":1,\"c\":2}}", "{\"a\":1,\"b\":2}", false, "{\"a\":1,\"c\":2}");
    check_decision("{\"result\":{\"A\":1}}", "{\"a\":1}", false, "{\"A\":1}");
    check_decision("{\"result\":[]}", "{}", false, "[]");
    /* undefined equals nothing, not even null or false */
    check_decision("{}", "false", false, "undefined");
    check_decision("{\"decision_id\":\"x\"}", "null", false, "undefined");
    check_decision("{\"result\":true}", NULL, false, "true");
    /* not an answer */
    check_decision("[1]", "1", false, NULL);
    check_decision("not json", "1", false, NULL);
    check_decision("", "1", false, NULL);
    check_decision(NULL, "1", false, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_opa_names),    cmocka_unit_test(test_reads_relative_and_dot_names),
        cmocka_unit_test(test_utf8_names),         cmocka_unit_test(test_refuses_absolute),
        cmocka_unit_test(test_refuses_dotdot),     cmocka_unit_test(test_refuses_links_and_devices),
        cmocka_unit_test(test_refuses_oversize),   cmocka_unit_test(test_refuses_other_formats),
        cmocka_unit_test(test_corrupt_stream),     cmocka_unit_test(test_manifest_rules),
        cmocka_unit_test(test_needs_rego),         cmocka_unit_test(test_data_files),
        cmocka_unit_test(test_refuses_duplicates), cmocka_unit_test(test_missing_root),
        cmocka_unit_test(test_decision_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
