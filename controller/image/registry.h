/*
 * A small OCI distribution client, as the image verifier needs it: manifests
 * by digest (the body must hash to it) or by tag, blobs by digest (hashed
 * too, redirects to blob storage followed, never from https to http), and the
 * referrers of a digest (the referrers API, or the tag-schema fallback
 * `sha256-<hex>` when the registry has no such API). Registry token auth:
 * anonymous first; a 401's `WWW-Authenticate: Bearer realm=...` is answered by
 * a token from the realm (with Basic credentials from a
 * kubernetes.io/dockerconfigjson Secret when it has some for the host), a
 * `Basic` challenge by the credentials themselves; a token is reused for the
 * rest of the client's life. Credentials and tokens are never logged and are
 * wiped when the client is freed.
 *
 * Sequential and blocking: every request goes through the shared transfer
 * loop (kind "registry") and the calling thread waits for its end, so it is
 * called from a job thread, never from a reconcile worker or the loop's thread.
 *
 * The pure parts (reference, challenge and docker config parsing) are exposed
 * for tests.
 */
#ifndef MB_IMAGE_REGISTRY_H
#define MB_IMAGE_REGISTRY_H

#include "net/transfer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define REGISTRY_MAX_BYTES (4LL * 1024 * 1024) /* manifests, indices, bundles, signature payloads */
#define REGISTRY_MESSAGE_MAX 1024
#define REGISTRY_REDIRECTS_MAX 3 /* a blob's redirects to its storage */

/* ---- references ------------------------------------------------------------ */

typedef struct {
    char host[256]; /* as it goes in URLs: "ghcr.io", "localhost:5000", "registry-1.docker.io" */
    char name[256]; /* the repository in that registry: "kfm/kfm-api", "library/nginx" */
    bool docker_hub;
} registry_ref;

/*
 * Parses spec.image.repository as Kubernetes and docker read it: the first
 * component is a host (with an optional :port) when it holds a '.' or a ':'
 * or is "localhost", else the name is on Docker Hub ("library/" before a
 * single component). No tag or digest. 0, or MB_EINVAL with a sentence naming
 * spec.image.repository and what to fix in err.
 */
int registry_ref_parse(registry_ref *out, const char *repository, char err[REGISTRY_MESSAGE_MAX]);

/* ---- WWW-Authenticate ------------------------------------------------------ */

typedef struct {
    char scheme[16];   /* "Bearer" or "Basic" (as the registry spelt it) */
    char realm[1024];  /* "" when absent */
    char service[256]; /* "" when absent */
    char scope[512];   /* "" when absent */
} registry_challenge;

/* Parses one challenge (auth-params quoted or not, commas inside quotes kept). 0, or MB_EINVAL (not a challenge). */
int registry_challenge_parse(registry_challenge *out, const char *header);

/* ---- docker config ----------------------------------------------------------- */

/*
 * The credentials a .dockerconfigjson text has for host: auths[key].auth
 * (base64 "user:password") or auths[key].username and .password, where key is
 * the host, or a URL of it ("https://host", "https://host/v1/"); for Docker
 * Hub also "https://index.docker.io/v1/", "index.docker.io", "docker.io". 0
 * with *user and *password (the caller frees both with mb_secret_free),
 * MB_ENOTFOUND (none for that host), MB_EINVAL (the text is not a docker
 * config, or the entry is malformed: err names the field), MB_ENOMEM.
 */
int registry_docker_auth(char **user, char **password, const char *docker_config, const registry_ref *ref,
                         char err[REGISTRY_MESSAGE_MAX]);

/* ---- the client -------------------------------------------------------------- */

/* Lets another thread stop a client's requests (the verifier's free): the running one is cancelled, later ones fail. */
typedef struct {
    pthread_mutex_t mu;
    net_transfer *current;
    bool stopped;
} registry_cancel;

void registry_cancel_init(registry_cancel *c);
void registry_cancel_destroy(registry_cancel *c);
void registry_cancel_fire(registry_cancel *c);

typedef struct {
    net_loop *net;
    const registry_ref *ref;
    const char *docker_config; /* .dockerconfigjson text, NULL: anonymous only */
    const char *ca_pem;        /* extra CA (PEM), NULL: the system's only */
    bool insecure;             /* http instead of https */
    long timeout_ms;           /* per request; 0: the transfer loop's default */
    registry_cancel *cancel;   /* NULL: not cancellable */
} registry_opts;

typedef struct registry registry;

/* Copies what it needs from opts. 0, MB_ENOMEM, or MB_EINVAL (the docker config is malformed: the message says where). */
int registry_new(registry **out, const registry_opts *opts);

/* Wipes the credentials and the token; accepts NULL. */
void registry_free(registry *r);

typedef enum {
    REGISTRY_FOUND = 0,   /* body holds the answer (hashing to the digest asked for, when one was) */
    REGISTRY_NOT_FOUND,   /* 404: not there (data, not an error) */
    REGISTRY_REFUSED,     /* credentials refused, a wrong digest, too big, a refused redirect, another 4xx */
    REGISTRY_UNREACHABLE, /* 5xx, 429, connection, TLS, timeout, cancelled: transient */
} registry_outcome;

typedef struct {
    registry_outcome outcome;
    char *body; /* FOUND: NUL-terminated, len bytes; NULL otherwise */
    size_t len;
    char content_type[128];
    bool denied; /* REFUSED because the registry or its token service refused the credentials (401/403) */
    char message[REGISTRY_MESSAGE_MAX]; /* not FOUND: one sentence saying what happened */
} registry_answer;

void registry_answer_clear(registry_answer *a);

/* The manifest (or index) at a digest ("sha256:<hex>", verified) or a tag. 0 (the outcome says how it went) or MB_ENOMEM. */
int registry_manifest(registry_answer *out, registry *r, const char *reference);

/* The blob at digest, verified against it. 0 or MB_ENOMEM. */
int registry_blob(registry_answer *out, registry *r, const char *digest);

/*
 * The referrers of digest as an OCI index: the referrers API, or, when the
 * registry answers 404 there, the index at tag `sha256-<hex>` (*fallback set);
 * NOT_FOUND when neither has one. 0 or MB_ENOMEM.
 */
int registry_referrers(registry_answer *out, registry *r, const char *digest, bool *fallback);

/* For tests and the bench: requests sent (auth included). */
unsigned long registry_requests(const registry *r);

#endif
