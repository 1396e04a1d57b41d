/*
 * Hand-rolled over getopt_long so that every error names the flag and what to
 * fix, and so that subcommands (version, receipt verify) come before flags.
 * --help is acted on only once the whole line has parsed, so that
 * `membrane run FLAGS... --help` checks FLAGS without running anything.
 */
#include "cli/options.h"
#include "runtime/httpserver.h"
#include "util/error.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_KUBECONFIG = 1000,
    OPT_CONTEXT,
    OPT_NAMESPACE,
    OPT_WORKERS,
    OPT_METRICS_ADDR,
    OPT_HEALTH_ADDR,
    OPT_LEADER_ELECT,
    OPT_LEADER_NS,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_WATCH_SELECTOR,
    OPT_ALLOW_AFTER_NS,
    OPT_ENABLE_PROBE,
};

static const char usage_text[] =
    "membrane: the governed API release operator\n"
    "\n"
    "usage:\n"
    "  membrane [run] [flags]          run the controllers (the default command)\n"
    "  membrane receipt verify -f FILE [-f FILE...]\n"
    "                                  recompute the receipt chain of `kubectl get -o json` objects, and check\n"
    "                                  each promotedFrom against its upstream when that object is given too\n"
    "  membrane version                print the version and build information\n"
    "\n"
    "flags of run:\n"
    "  --kubeconfig PATH               kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then in-cluster\n"
    "  --context NAME                  kubeconfig context; default its current-context\n"
    "  --namespace NS                  watch one namespace; default all\n"
    "  --workers N                     concurrent reconciles per kind (1-64), default 4\n"
    "  --metrics-addr ADDR             [host]:port serving /metrics, default :8080\n"
    "  --health-addr ADDR              [host]:port serving /healthz and /readyz, default :8081\n"
    "  --leader-elect                  elect a leader through the Lease \"membrane-leader\"\n"
    "  --leader-election-namespace NS  namespace of that Lease; default the context's or the pod's namespace\n"
    "  --watch-label-selector SEL      reconcile only GovernedAPIReleases, PolicyBundles and DatasetPromotions\n"
    "                                  whose labels match SEL (\"shard=a\"); the Lease becomes\n"
    "                                  \"membrane-leader-<first 8 hex of sha256(SEL)>\"\n"
    "  --allow-after-namespaces NS[,NS...]\n"
    "                                  namespaces a release's spec.after may name; an entry outside them\n"
    "                                  blocks (NotPromoted); default any namespace\n"
    "  --enable-probe                  run the membrane probe (spec.membrane.probe): the install grants creating\n"
    "                                  and deleting its pods (chart probe.enabled, kustomize manifests/probe);\n"
    "                                  without it a release asking for the probe is blocked\n"
    "  --log-format json|text          default json\n"
    "  --log-level debug|info|warn|error  default info\n"
    "  -h, --help                      this text\n"
    "\n"
    "exit codes: 0 clean shutdown, 1 runtime failure, 2 bad flags or configuration\n";

const char *cli_usage(void)
{
    return usage_text;
}

/* The address as the server will parse it at start-up: a line --help accepts starts. */
static int parse_addr(const char *flag, const char *v)
{
    httpserver_addr a;
    return httpserver_addr_parse(&a, v, flag);
}

static int non_empty(const char *flag, const char *v)
{
    if (!v || !*v)
        return mb_error_set(MB_EINVAL, "%s needs a non-empty value", flag);
    return 0;
}

/* ---- label selectors in kubectl's syntax (apimachinery's labels.Parse) ---- */

/* A label name or value: at most 63 of [A-Za-z0-9-_.], starting and ending alphanumeric; empty only if allowed. */
static bool label_token_ok(const char *p, size_t n, bool empty_ok)
{
    if (n == 0)
        return empty_ok;
    if (n > 63 || !isalnum((unsigned char)p[0]) || !isalnum((unsigned char)p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_' && p[i] != '.')
            return false;
    return true;
}

/* A label key: [prefix/]name, prefix a DNS subdomain (lower case alphanumerics, '-', '.', at most 253). */
static bool label_key_ok(const char *p, size_t n)
{
    const char *slash = memchr(p, '/', n);
    if (!slash)
        return label_token_ok(p, n, false);
    size_t pn = (size_t)(slash - p);
    if (pn == 0 || pn > 253 || !isalnum((unsigned char)p[0]) || !isalnum((unsigned char)p[pn - 1]))
        return false;
    for (size_t i = 0; i < pn; i++)
        if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '-' || p[i] == '.'))
            return false;
    return label_token_ok(slash + 1, n - pn - 1, false);
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static size_t token_len(const char *p)
{
    size_t n = 0;
    while (p[n] && !strchr(" \t,!=<>()", p[n]))
        n++;
    return n;
}

static int bad_selector(const char *sel, const char *what)
{
    return mb_error_set(MB_EINVAL,
                        "--watch-label-selector \"%s\": %s; want a label selector such as \"shard=a\", "
                        "\"shard in (a,b)\" or \"shard,!legacy\"",
                        sel, what);
}

/*
 * Checks sel as the API server's labelSelector parameter would take it:
 * comma-separated requirements "key", "!key", "key=v", "key==v", "key!=v",
 * "key>N", "key<N", "key in (v,...)", "key notin (v,...)". Empty is refused:
 * a shard that selects everything is no shard.
 */
static int check_label_selector(const char *sel)
{
    const char *p = skip_space(sel);
    if (!*p)
        return mb_error_set(MB_EINVAL, "--watch-label-selector needs a non-empty label selector, such as \"shard=a\"");
    for (;;) {
        bool negated = false;
        p = skip_space(p);
        if (*p == '!') {
            negated = true;
            p = skip_space(p + 1);
        }
        size_t kn = token_len(p);
        if (!label_key_ok(p, kn))
            return bad_selector(sel, kn ? "a label key is not valid (at most 63 characters of [A-Za-z0-9-_.], "
                                          "starting and ending alphanumeric, with an optional DNS prefix and \"/\")"
                                        : "a requirement has no label key");
        p = skip_space(p + kn);
        if (negated || *p == ',' || !*p) {
            /* "!key" or "key": nothing follows but the next requirement */
        } else if (strncmp(p, "in", 2) == 0 || strncmp(p, "notin", 5) == 0) {
            p = skip_space(p + (p[0] == 'i' ? 2 : 5));
            if (*p != '(')
                return bad_selector(sel, "\"in\" and \"notin\" take a parenthesised list of values");
            size_t values = 0;
            for (p++;; p++) {
                p = skip_space(p);
                size_t vn = token_len(p);
                if (!label_token_ok(p, vn, true))
                    return bad_selector(sel, "a label value is not valid (at most 63 characters of [A-Za-z0-9-_.], "
                                             "starting and ending alphanumeric)");
                values += vn > 0;
                p = skip_space(p + vn);
                if (*p == ')')
                    break;
                if (*p != ',')
                    return bad_selector(sel, "a value list is not closed with \")\"");
            }
            if (!values)
                return bad_selector(sel, "\"in\" and \"notin\" need at least one value");
            p = skip_space(p + 1);
        } else {
            bool order = *p == '<' || *p == '>';
            if (strncmp(p, "==", 2) == 0 || strncmp(p, "!=", 2) == 0)
                p += 2;
            else if (*p == '=' || order)
                p++;
            else
                return bad_selector(sel, "an operator is missing or unknown (=, ==, !=, in, notin, <, >)");
            p = skip_space(p);
            size_t vn = token_len(p);
            if (!label_token_ok(p, vn, !order))
                return bad_selector(sel, "a label value is not valid (at most 63 characters of [A-Za-z0-9-_.], "
                                         "starting and ending alphanumeric)");
            for (size_t i = 0; order && i < vn; i++)
                if (!isdigit((unsigned char)p[i]))
                    return bad_selector(sel, "\"<\" and \">\" compare with a whole number");
            p = skip_space(p + vn);
        }
        if (!*p)
            return 0;
        if (*p != ',')
            return bad_selector(sel, "requirements are separated by \",\"");
        p++;
    }
}

/* ---- receipt verify -f FILE [-f FILE...] ---- */

static int parse_receipt(cli_options *out, int argc, char **argv)
{
    /* argv[0] is "receipt" */
    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return mb_error_set(MB_EINVAL, "receipt: the only subcommand is \"verify -f FILE [-f FILE...]\"");
    for (int i = 2; i < argc; i++) {
        const char *file = NULL;
        if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--filename") == 0) && i + 1 < argc)
            file = argv[++i];
        else if (strncmp(argv[i], "--filename=", 11) == 0)
            file = argv[i] + 11;
        else
            return mb_error_set(MB_EINVAL,
                                "receipt verify: unexpected argument \"%s\"; usage: membrane receipt verify -f FILE "
                                "[-f FILE...]",
                                argv[i]);
        if (!*file)
            return mb_error_set(MB_EINVAL, "receipt verify: -f needs a file name (got an empty one)");
        if (out->n_receipt_files == CLI_RECEIPT_FILES_MAX)
            return mb_error_set(MB_EINVAL, "receipt verify: at most %d -f files; put the objects in a List instead",
                                CLI_RECEIPT_FILES_MAX);
        out->receipt_files[out->n_receipt_files++] = file;
    }
    if (!out->n_receipt_files)
        return mb_error_set(MB_EINVAL, "receipt verify: -f FILE is required (a `kubectl get -o json` object)");
    out->receipt_file = out->receipt_files[0];
    out->command = CLI_RECEIPT_VERIFY;
    return 0;
}

/* ---- --allow-after-namespaces NS[,NS...] ---- */

/*
 * A comma-separated list of namespace names (RFC 1123 labels: at most 63 of
 * [a-z0-9-], starting and ending alphanumeric); none of them empty.
 */
static int check_namespace_list(const char *list)
{
    const char *p = list;
    if (!*p)
        return mb_error_set(MB_EINVAL, "--allow-after-namespaces needs at least one namespace, such as "
                                       "\"kfm-staging,kfm-dev\"; leave the flag out to allow any namespace");
    for (;;) {
        size_t n = strcspn(p, ",");
        bool ok = n > 0 && n <= 63 && isalnum((unsigned char)p[0]) && isalnum((unsigned char)p[n - 1]);
        for (size_t i = 0; ok && i < n; i++)
            ok = islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '-';
        if (!ok)
            return mb_error_set(MB_EINVAL,
                                "--allow-after-namespaces \"%s\": \"%.*s\" is not a namespace name (1 to 63 of "
                                "[a-z0-9-], starting and ending alphanumeric); list namespaces separated by \",\"",
                                list, (int)(n > 80 ? 80 : n), p);
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

int cli_options_parse(cli_options *out, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"metrics-addr", required_argument, NULL, OPT_METRICS_ADDR},
        {"health-addr", required_argument, NULL, OPT_HEALTH_ADDR},
        {"leader-elect", no_argument, NULL, OPT_LEADER_ELECT},
        {"leader-election-namespace", required_argument, NULL, OPT_LEADER_NS},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"watch-label-selector", required_argument, NULL, OPT_WATCH_SELECTOR},
        {"allow-after-namespaces", required_argument, NULL, OPT_ALLOW_AFTER_NS},
        {"enable-probe", no_argument, NULL, OPT_ENABLE_PROBE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int err = 0;
    int first = 1;
    bool help = false;

    memset(out, 0, sizeof(*out));
    out->command = CLI_RUN;
    out->workers = 4;
    out->metrics_addr = ":8080";
    out->health_addr = ":8081";
    out->log_format = MB_LOG_JSON;
    out->log_level = MB_LOG_INFO;

    if (argc > 1 && argv[1][0] != '-') {
        if (strcmp(argv[1], "version") == 0) {
            if (argc > 2)
                return mb_error_set(MB_EINVAL, "version takes no arguments (got \"%s\")", argv[2]);
            out->command = CLI_VERSION;
            return 0;
        }
        if (strcmp(argv[1], "receipt") == 0)
            return parse_receipt(out, argc - 1, argv + 1);
        if (strcmp(argv[1], "run") != 0)
            return mb_error_set(MB_EINVAL, "unknown command \"%s\"; the commands are run, receipt verify, version",
                                argv[1]);
        first = 2;
    }

    /* getopt_long keeps global state: reset it and parse argv[first-1..] */
    optind = 1;
    opterr = 0;
    int sub_argc = argc - first + 1;
    char **sub_argv = argv + first - 1;
    for (;;) {
        int prev = optind;
        int c = getopt_long(sub_argc, sub_argv, ":h", longopts, NULL);
        if (c == -1)
            break;
        const char *flag = sub_argv[prev] ? sub_argv[prev] : "";
        switch (c) {
        case OPT_KUBECONFIG:
            if ((err = non_empty("--kubeconfig", optarg)) < 0)
                return err;
            out->kubeconfig = optarg;
            break;
        case OPT_CONTEXT:
            if ((err = non_empty("--context", optarg)) < 0)
                return err;
            out->context = optarg;
            break;
        case OPT_NAMESPACE:
            if ((err = non_empty("--namespace", optarg)) < 0)
                return err;
            out->namespace = optarg;
            break;
        case OPT_WORKERS: {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (!*optarg || *end || n < 1 || n > 64)
                return mb_error_set(MB_EINVAL, "--workers \"%s\": want a whole number from 1 to 64", optarg);
            out->workers = (int)n;
            break;
        }
        case OPT_METRICS_ADDR:
            if ((err = parse_addr("--metrics-addr", optarg)) < 0)
                return err;
            out->metrics_addr = optarg;
            break;
        case OPT_HEALTH_ADDR:
            if ((err = parse_addr("--health-addr", optarg)) < 0)
                return err;
            out->health_addr = optarg;
            break;
        case OPT_LEADER_ELECT: out->leader_elect = true; break;
        case OPT_LEADER_NS:
            if ((err = non_empty("--leader-election-namespace", optarg)) < 0)
                return err;
            out->leader_election_namespace = optarg;
            break;
        case OPT_LOG_FORMAT:
            if (mb_log_format_parse(&out->log_format, optarg) < 0)
                return mb_error_set(MB_EINVAL, "--log-format \"%s\": want json or text", optarg);
            break;
        case OPT_LOG_LEVEL:
            if (mb_log_level_parse(&out->log_level, optarg) < 0)
                return mb_error_set(MB_EINVAL, "--log-level \"%s\": want debug, info, warn or error", optarg);
            break;
        case OPT_WATCH_SELECTOR:
            if ((err = check_label_selector(optarg)) < 0)
                return err;
            out->watch_label_selector = optarg;
            break;
        case OPT_ALLOW_AFTER_NS:
            if ((err = check_namespace_list(optarg)) < 0)
                return err;
            out->allow_after_namespaces = optarg;
            break;
        /* the probe opt-in: the install's RBAC and admission policy allow its pods */
        case OPT_ENABLE_PROBE: out->enable_probe = true; break;
        case 'h': help = true; break; /* after the rest of the line is checked */
        case ':': return mb_error_set(MB_EINVAL, "%s needs a value; see membrane --help", flag);
        default:
            /* a known flag that takes no value, given one (--leader-elect=true) */
            if (optopt && strncmp(flag, "--", 2) == 0 && strchr(flag, '='))
                return mb_error_set(MB_EINVAL, "%.*s takes no value (got \"%s\"); see membrane --help",
                                    (int)(strchr(flag, '=') - flag), flag, strchr(flag, '=') + 1);
            return mb_error_set(MB_EINVAL, "unknown flag %s; see membrane --help", flag);
        }
    }
    if (optind < sub_argc)
        return mb_error_set(MB_EINVAL, "unexpected argument \"%s\"; see membrane --help", sub_argv[optind]);
    if (help)
        out->command = CLI_HELP;
    return 0;
}
