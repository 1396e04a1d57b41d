/*
 * membrane: entry point. Parses the command line and runs the controllers,
 * or one of the subcommands (version).
 */
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: membrane [run] [flags]\n"
          "       membrane version\n", f);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("membrane %s (%s)\n", MEMBRANE_VERSION, MEMBRANE_GIT[0] ? MEMBRANE_GIT : "unknown");
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
