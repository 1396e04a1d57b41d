/*
 * The command line: defaults, every flag, subcommands, and errors that name the flag.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cli/options.h"
#include "util/error.h"

#include <string.h>

#define ARGV(...) ((char *[]){"membrane", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"membrane", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, ...) cli_options_parse((o), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_defaults(void **state)
{
    (void)state;
    cli_options o;
    char *argv[] = {"membrane", NULL};
    assert_int_equal(cli_options_parse(&o, 1, argv), 0);
    assert_int_equal(o.command, CLI_RUN);
    assert_int_equal(o.workers, 4);
    assert_string_equal(o.metrics_addr, ":8080");
    assert_string_equal(o.health_addr, ":8081");
    assert_false(o.leader_elect);
    assert_null(o.kubeconfig);
    assert_null(o.namespace);
    assert_null(o.watch_label_selector);
    assert_int_equal(o.log_format, MB_LOG_JSON);
    assert_int_equal(o.log_level, MB_LOG_INFO);
}

static void test_every_flag(void **state)
{
    (void)state;
    cli_options o;
    assert_int_equal(PARSE(&o, "run", "--kubeconfig", "/k", "--context=dev", "--namespace", "kfm", "--workers", "8",
                           "--metrics-addr", "127.0.0.1:9090", "--health-addr=:0", "--leader-elect",
                           "--leader-election-namespace", "membrane-system", "--log-format", "text",
                           "--log-level=debug"),
                     0);
    assert_int_equal(o.command, CLI_RUN);
    assert_string_equal(o.kubeconfig, "/k");
    assert_string_equal(o.context, "dev");
    assert_string_equal(o.namespace, "kfm");
    assert_int_equal(o.workers, 8);
    assert_string_equal(o.metrics_addr, "127.0.0.1:9090");
    assert_string_equal(o.health_addr, ":0");
    assert_true(o.leader_elect);
    assert_string_equal(o.leader_election_namespace, "membrane-system");
    assert_int_equal(o.log_format, MB_LOG_TEXT);
    assert_int_equal(o.log_level, MB_LOG_DEBUG);
}

static void test_subcommands(void **state)
{
    (void)state;
    cli_options o;
    assert_int_equal(PARSE(&o, "version"), 0);
    assert_int_equal(o.command, CLI_VERSION);
    assert_int_equal(PARSE(&o, "--help"), 0);
    assert_int_equal(o.command, CLI_HELP);
    assert_int_equal(PARSE(&o, "receipt", "verify", "-f", "gar.json"), 0);
    assert_int_equal(o.command, CLI_RECEIPT_VERIFY);
    assert_string_equal(o.receipt_file, "gar.json");
    assert_non_null(strstr(cli_usage(), "--leader-election-namespace"));
}

static void expect_error(int rc, const char *substring);

/* --help checks the rest of the line first: a Deployment's args can be checked without running them */
static void test_help_checks_the_line(void **state)
{
    (void)state;
    cli_options o;
    assert_int_equal(PARSE(&o, "run", "--leader-elect", "--leader-election-namespace=membrane-system",
                           "--metrics-addr=:8080", "--health-addr=:8081", "--log-format=json", "--help"),
                     0);
    assert_int_equal(o.command, CLI_HELP);
    assert_int_equal(PARSE(&o, "--help", "--workers=2"), 0);
    assert_int_equal(o.command, CLI_HELP);
    assert_int_equal(o.workers, 2);
    expect_error(PARSE(&o, "run", "--leader-elect", "--no-such-flag", "--help"), "--no-such-flag");
    expect_error(PARSE(&o, "run", "--help", "--workers=0"), "--workers");
    expect_error(PARSE(&o, "run", "--help", "--log-level=trace"), "--log-level");
    expect_error(PARSE(&o, "run", "stray", "--help"), "stray");
    expect_error(PARSE(&o, "run", "--metrics-addr", "--help"), "--metrics-addr");
}

static void expect_error(int rc, const char *substring)
{
    assert_int_equal(rc, MB_EINVAL);
    if (!strstr(mb_error_last(), substring))
        fail_msg("error \"%s\" does not contain \"%s\"", mb_error_last(), substring);
}

static void test_errors_name_the_flag(void **state)
{
    (void)state;
    cli_options o;
    expect_error(PARSE(&o, "--workers", "0"), "--workers \"0\"");
    expect_error(PARSE(&o, "--workers", "four"), "--workers");
    expect_error(PARSE(&o, "--metrics-addr", "8080"), "--metrics-addr \"8080\"");
    expect_error(PARSE(&o, "--health-addr", ":99999"), "--health-addr");
    expect_error(PARSE(&o, "--log-format", "xml"), "--log-format \"xml\"");
    expect_error(PARSE(&o, "--log-level", "loud"), "--log-level");
    expect_error(PARSE(&o, "--bogus"), "unknown flag --bogus");
    expect_error(PARSE(&o, "--bogus=1"), "unknown flag --bogus=1");
    expect_error(PARSE(&o, "--leader-elect=true"), "--leader-elect takes no value (got \"true\")");
    expect_error(PARSE(&o, "--help=yes"), "--help takes no value");
    /* what the server would refuse at start-up is refused here, so a line --help accepts starts */
    expect_error(PARSE(&o, "--metrics-addr", "::1:8080"), "put an IPv6 address in brackets");
    expect_error(PARSE(&o, "--health-addr", ":+80"), "--health-addr \":+80\": the port must be a number");
    assert_int_equal(PARSE(&o, "--metrics-addr", "[::1]:8080"), 0);
    expect_error(PARSE(&o, "--kubeconfig"), "--kubeconfig needs a value");
    expect_error(PARSE(&o, "--kubeconfig="), "--kubeconfig needs a non-empty value");
    expect_error(PARSE(&o, "deploy"), "unknown command \"deploy\"");
    expect_error(PARSE(&o, "receipt", "verify"), "-f FILE is required");
    expect_error(PARSE(&o, "receipt", "check"), "receipt");
    expect_error(PARSE(&o, "run", "stray"), "unexpected argument \"stray\"");
}

/* --watch-label-selector takes what the API server's labelSelector takes, and says what is wrong otherwise. */
static void test_watch_label_selector(void **state)
{
    (void)state;
    cli_options o;
    static const char *const good[] = {
        "shard=a",
        "shard==a",
        "shard!=b",
        "shard",
        "!legacy",
        "shard in (a,b)",
        "shard notin (a, b)",
        "tier=api,shard=a",
        "kfm.dev/shard=a",
        " shard = a , !legacy ",
        "rank>3",
        "rank<10",
        "shard=",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(PARSE(&o, "run", "--watch-label-selector", (char *)good[i]), 0);
        assert_string_equal(o.watch_label_selector, good[i]);
    }
    static const struct {
        const char *sel, *says;
    } bad[] = {
        {"", "needs a non-empty label selector"},
        {"   ", "needs a non-empty label selector"},
        {"shard=a b", "requirements are separated by \",\""},
        {"shard in (a,b", "not closed"},
        {"shard in ()", "at least one value"},
        {"shard in a", "parenthesised list"},
        {"=a", "no label key"},
        {"-shard=a", "label key is not valid"},
        {"Kfm.Dev/shard=a", "label key is not valid"},
        {"shard=a$", "label value is not valid"},
        {"shard a", "operator is missing or unknown"},
        {"shard=-a", "label value is not valid"},
        {"rank>x", "whole number"},
        {"shard=a,,tier=b", "no label key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(PARSE(&o, "run", "--watch-label-selector", (char *)bad[i].sel), MB_EINVAL);
        if (!strstr(mb_error_last(), "--watch-label-selector") || !strstr(mb_error_last(), bad[i].says))
            fail_msg("\"%s\": %s", bad[i].sel, mb_error_last());
    }
    assert_int_equal(PARSE(&o, "run", "--watch-label-selector"), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "--watch-label-selector needs a value"));
    assert_non_null(strstr(cli_usage(), "--watch-label-selector SEL"));
}

/* receipt verify takes several -f (the upstream releases beside the downstream one); one works as before. */
static void test_receipt_several_files(void **state)
{
    (void)state;
    cli_options o;
    assert_int_equal(PARSE(&o, "receipt", "verify", "-f", "staging.json", "--filename=prod.json", "-f", "-"), 0);
    assert_int_equal(o.command, CLI_RECEIPT_VERIFY);
    assert_int_equal(o.n_receipt_files, 3);
    assert_string_equal(o.receipt_files[0], "staging.json");
    assert_string_equal(o.receipt_files[1], "prod.json");
    assert_string_equal(o.receipt_files[2], "-");
    assert_string_equal(o.receipt_file, "staging.json");
    assert_int_equal(PARSE(&o, "receipt", "verify", "-f", "gar.json"), 0);
    assert_int_equal(o.n_receipt_files, 1);
    expect_error(PARSE(&o, "receipt", "verify", "-f", "a.json", "--filename="), "-f needs a file name");
    expect_error(PARSE(&o, "receipt", "verify", "-f", "a.json", "b.json"), "unexpected argument \"b.json\"");
    char *many[3 + 2 * (CLI_RECEIPT_FILES_MAX + 1) + 1] = {"membrane", "receipt", "verify"};
    int n = 3;
    for (int k = 0; k <= CLI_RECEIPT_FILES_MAX; k++) {
        many[n++] = "-f";
        many[n++] = "x.json";
    }
    many[n] = NULL;
    expect_error(cli_options_parse(&o, n, many), "at most 16 -f files");
}

/* --allow-after-namespaces: a list of namespace names; default any namespace. */
static void test_allow_after_namespaces(void **state)
{
    (void)state;
    cli_options o;
    assert_int_equal(PARSE(&o, "run"), 0);
    assert_null(o.allow_after_namespaces);
    assert_int_equal(PARSE(&o, "run", "--allow-after-namespaces", "kfm-staging,kfm-dev"), 0);
    assert_string_equal(o.allow_after_namespaces, "kfm-staging,kfm-dev");
    assert_int_equal(PARSE(&o, "--allow-after-namespaces=kfm-staging"), 0);
    assert_string_equal(o.allow_after_namespaces, "kfm-staging");
    assert_non_null(strstr(cli_usage(), "--allow-after-namespaces"));
    expect_error(PARSE(&o, "--allow-after-namespaces="), "--allow-after-namespaces needs at least one namespace");
    expect_error(PARSE(&o, "--allow-after-namespaces"), "--allow-after-namespaces needs a value");
    expect_error(PARSE(&o, "--allow-after-namespaces", "kfm-staging,KFM"),
                 "--allow-after-namespaces \"kfm-staging,KFM\": \"KFM\" is not a namespace name");
    expect_error(PARSE(&o, "--allow-after-namespaces", "kfm-staging,,kfm-dev"), "\"\" is not a namespace name");
    expect_error(PARSE(&o, "--allow-after-namespaces", "kfm-staging,"), "\"\" is not a namespace name");
    expect_error(PARSE(&o, "--allow-after-namespaces", "-kfm"), "\"-kfm\" is not a namespace name");
    expect_error(PARSE(&o, "--allow-after-namespaces", "kfm_staging"), "--allow-after-namespaces");
    expect_error(PARSE(&o, "--allow-after-namespaces",
                       "a234567890123456789012345678901234567890123456789012345678901234"),
                 "is not a namespace name");
    /* checked with the rest of the line under --help, as every flag */
    expect_error(PARSE(&o, "run", "--allow-after-namespaces", "Bad", "--help"), "--allow-after-namespaces");
}

/* --enable-probe: off by default, on when given, takes no value, and is in the usage. */
static void test_enable_probe(void **state)
{
    (void)state;
    cli_options o;
    assert_int_equal(PARSE(&o, "run", "--leader-elect"), 0);
    assert_false(o.enable_probe);
    assert_int_equal(PARSE(&o, "run", "--enable-probe"), 0);
    assert_true(o.enable_probe);
    assert_int_equal(PARSE(&o, "--enable-probe", "--workers", "2"), 0);
    assert_true(o.enable_probe);
    assert_int_equal(PARSE(&o, "run", "--enable-probe=true"), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "--enable-probe takes no value"));
    assert_non_null(strstr(cli_usage(), "--enable-probe"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_flag),
        cmocka_unit_test(test_subcommands),
        cmocka_unit_test(test_help_checks_the_line),
        cmocka_unit_test(test_errors_name_the_flag),
        cmocka_unit_test(test_watch_label_selector),
        cmocka_unit_test(test_receipt_several_files),
        cmocka_unit_test(test_allow_after_namespaces),
        cmocka_unit_test(test_enable_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
