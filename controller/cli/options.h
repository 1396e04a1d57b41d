/*
 * The command line of the membrane binary, as API.md fixes it: the run flags,
 * `receipt verify -f FILE [-f FILE...]` and `version`. Parsing is pure: a bad flag or value
 * returns MB_EINVAL with a message that names the flag (main exits 2).
 */
#ifndef MB_CLI_OPTIONS_H
#define MB_CLI_OPTIONS_H

#include "util/log.h"

#include <stdbool.h>

/* receipt verify takes at most this many -f files */
#define CLI_RECEIPT_FILES_MAX 16

typedef enum {
    CLI_RUN = 0,
    CLI_VERSION,
    CLI_HELP,
    CLI_RECEIPT_VERIFY,
} cli_command;

typedef struct {
    cli_command command;
    const char *kubeconfig;   /* NULL: $KUBECONFIG, ~/.kube/config, in-cluster */
    const char *context;      /* NULL: current-context */
    const char *namespace;    /* NULL: all namespaces */
    int workers;              /* per kind, default 4 */
    const char *metrics_addr; /* default ":8080" */
    const char *health_addr;  /* default ":8081" */
    bool leader_elect;
    const char *leader_election_namespace;            /* NULL: the in-cluster namespace, else "default" */
    const char *watch_label_selector;                 /* NULL: every object of the three kinds of ours */
    mb_log_format log_format;                         /* default json */
    mb_log_level log_level;                           /* default info */
    const char *receipt_file;                         /* receipt verify -f: the first one */
    const char *receipt_files[CLI_RECEIPT_FILES_MAX]; /* receipt verify -f, every one, in order */
    int n_receipt_files;
    /* --allow-after-namespaces NS[,NS...]: the namespaces spec.after may name, as given (each one an RFC 1123
     * label, none empty); NULL: any namespace */
    const char *allow_after_namespaces;
    /* --enable-probe: the install grants the membrane probe's pods (create/delete) and admits them; without it a
     * release asking for spec.membrane.probe is blocked at the gates */
    bool enable_probe;
} cli_options;

/*
 * Fills out from argv (pointers borrow argv). 0, or MB_EINVAL with a message
 * naming the flag. -h/--help gives CLI_HELP only when every other argument
 * parses too: `membrane run ARGS... --help` is a check of ARGS (exit 0 with
 * the usage, or 2 naming the bad flag), which the install test runs on the
 * Deployments' args.
 */
int cli_options_parse(cli_options *out, int argc, char **argv);

/* The --help text. */
const char *cli_usage(void);

#endif
