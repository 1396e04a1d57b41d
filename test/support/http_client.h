/*
 * A small HTTP client for the tests of membrane's own HTTP server (libcurl),
 * and a reader of single samples in a Prometheus text exposition.
 */
#ifndef TEST_HTTP_CLIENT_H
#define TEST_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    long status;
    char *body; /* never NULL */
    size_t len;
    char content_type[128];
    long connects; /* new connections this request made */
    CURLcode rc;
} reply;

/* One request on easy (reused between calls, so connections can be kept alive). */
reply fetch_with(CURL *easy, const char *method, const char *host, int port, const char *path);

/* One request to 127.0.0.1:port on a connection of its own. */
reply fetch(const char *method, int port, const char *path);

void reply_free(reply *r);

/* The value of the sample whose name and labels are exactly series ("name{a=\"b\"}"), parsed from an exposition. */
bool sample_value(double *out, const char *exposition, const char *series);

#endif
