/*
 * The governed API double's own metrics, served on GET /metrics in the
 * Prometheus text format for the slo check's e2e (a real Prometheus scrapes
 * them): http_requests_total{code,digest}, a counter of the answers to the
 * governed API's endpoints by status and by the digest the double acted as,
 * and http_request_duration_seconds{digest}, a histogram of how long each
 * took (its _bucket{le}, _sum and _count). Every digest of the behaviour
 * table starts at zero (codes 200 and 500), so a rate over a version's first
 * seconds is a number, not an absent series. Thread-safe.
 */
#ifndef DOUBLE_METRICS_H
#define DOUBLE_METRICS_H

/* A digest's series, at zero until observed; ignored once the store is full. */
void double_metrics_declare(const char *digest);

/* One answer: its status, and the seconds from the request's arrival to the end of the answer. */
void double_metrics_observe(const char *digest, int code, double seconds);

/* The whole page (text format 0.0.4); caller frees. NULL: out of memory. */
char *double_metrics_render(void);

#endif
