/*
 * A small HTTP client for the tests of membrane's own HTTP server (http_client.h).
 */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t collect(char *data, size_t size, size_t n, void *p)
{
    reply *r = p;
    char *b = realloc(r->body, r->len + size * n + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, data, size * n);
    r->len += size * n;
    b[r->len] = '\0';
    r->body = b;
    return size * n;
}

/* One request on easy (reused between calls, so connections can be kept alive). */
reply fetch_with(CURL *easy, const char *method, const char *host, int port, const char *path)
{
    reply r = {0};
    char url[256];
    char *ct = NULL;
    snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    r.rc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &r.connects);
    if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(r.content_type, sizeof(r.content_type), "%s", ct);
    if (!r.body)
        r.body = calloc(1, 1);
    return r;
}

reply fetch(const char *method, int port, const char *path)
{
    CURL *easy = curl_easy_init();
    reply r = fetch_with(easy, method, "127.0.0.1", port, path);
    curl_easy_cleanup(easy);
    return r;
}

void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of the sample whose name and labels are exactly series ("name{a=\"b\"}"), parsed from an exposition. */
bool sample_value(double *out, const char *exposition, const char *series)
{
    const char *line = exposition;
    size_t n = strlen(series);
    while (line && *line) {
        if (line[0] != '#' && strncmp(line, series, n) == 0 && line[n] == ' ') {
            char *end = NULL;
            *out = strtod(line + n + 1, &end);
            return end && (*end == '\n' || *end == '\0');
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}
