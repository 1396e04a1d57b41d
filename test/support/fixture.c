/*
 * Fixture files under test/fixtures.
 */
#include "fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

cJSON *fixture_yaml_text(const char *text)
{
    cJSON *doc = NULL;
    if (mb_yaml_parse(&doc, text, strlen(text), "test") < 0)
        fail_msg("test YAML does not parse: %s", mb_error_last());
    return doc;
}

cJSON *fixture_yaml(const char *rel)
{
    size_t len = 0;
    char *text = fixture_read(rel, &len);
    cJSON *doc = NULL;
    if (!text)
        fail_msg("fixture %s is missing", rel);
    if (mb_yaml_parse(&doc, text, len, rel) < 0)
        fail_msg("fixture %s does not parse: %s", rel, mb_error_last());
    free(text);
    return doc;
}
