/*
 * Fixture files under test/fixtures.
 */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>

const char *fixture_path(const char *rel)
{
    static _Thread_local char path[4096];
    snprintf(path, sizeof(path), "%s/%s", FIXTURES_DIR, rel);
    return path;
}

char *fixture_read(const char *rel, size_t *len)
{
    FILE *f = fopen(fixture_path(rel), "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}
