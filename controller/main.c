/*
 * membrane: entry point. Parses the command line (cli/options.h) and runs the
 * controllers or a subcommand. Exit codes: 0 clean shutdown, 1 runtime
 * failure, 2 bad flags or configuration.
 */
#include "cli/options.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

static int run(const cli_options *opts)
{
    (void)opts;
    log_error("the controllers are not built yet");
    return 1;
}

int main(int argc, char **argv)
{
    cli_options opts;

    if (cli_options_parse(&opts, argc, argv) < 0) {
        fprintf(stderr, "membrane: %s\n", mb_error_last());
        return 2;
    }
    switch (opts.command) {
    case CLI_HELP:
        fputs(cli_usage(), stdout);
        return 0;
    case CLI_VERSION:
        printf("membrane %s\ngit: %s\nbuilt with: %s\n", MEMBRANE_VERSION,
               MEMBRANE_GIT[0] ? MEMBRANE_GIT : "unknown", __VERSION__);
        return 0;
    case CLI_RECEIPT_VERIFY:
        fprintf(stderr, "membrane: receipt verify is not built yet\n");
        return 1;
    case CLI_RUN:
        break;
    }
    mb_log_setup(opts.log_format, opts.log_level, NULL);
    return run(&opts);
}
