/*
 * The image verifier of GovernedAPIRelease's `spec.image.verify` gate: a
 * digest is VERIFIED when it carries a cosign signature by the given key over
 * exactly that digest (cosign v3's sigstore bundle attached through the OCI
 * referrers API, or cosign v2's `sha256-<hex>.sig` image), and every listed
 * predicate type is attested by an in-toto statement signed by the same key
 * whose subjects hold that digest (v3 bundles in referrers, or the v2
 * `sha256-<hex>.att` image).
 *
 * image_verify_run is one whole, blocking verification; every request goes
 * through the shared transfer loop (kind "registry"). image_verifier runs
 * them on a thread of its own, one per cache key, and keeps the results: the
 * release controller calls image_verifier_get from its reconcile, which never
 * blocks, and is notified by workqueue key when a result is ready.
 */
#ifndef MB_IMAGE_VERIFY_H
#define MB_IMAGE_VERIFY_H

#include "net/transfer.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *repository;     /* spec.image.repository ("host[:port]/path", or a Docker Hub name) */
    const char *digest;         /* sha256:<64 lowercase hex> to verify */
    const char *public_key_pem; /* the cosign public key (PEM) */
    size_t public_key_len;
    const char *const *attestations; /* predicate types that must be attested, or NULL */
    size_t n_attestations;
    const char *docker_config; /* the registry Secret's .dockerconfigjson text; NULL: anonymous */
    const char *ca_pem;        /* extra CA certificates (PEM) trusted with the system's; NULL: none */
    bool insecure;             /* plain http (spec.image.verify.insecureRegistry) */
    long timeout_ms;           /* per request; 0: IMAGE_VERIFY_TIMEOUT_MS_DEFAULT */
} image_verify_input;

#define IMAGE_VERIFY_TIMEOUT_MS_DEFAULT 20000L

typedef enum {
    IMAGE_VERIFY_PENDING = 0, /* queued or running: the caller is notified by key when it ends */
    IMAGE_VERIFY_VERIFIED,    /* signature (and every attestation) verified */
    IMAGE_VERIFY_REFUSED,     /* missing or wrong: ImageNotVerified, needs a push or a spec change */
    IMAGE_VERIFY_UNREACHABLE, /* the registry could not be asked (5xx, connection, timeout): transient */
} image_verify_state;

typedef struct {
    image_verify_state state;
    char layout[4];          /* "v2" or "v3": where the verified signature was found ("" unless VERIFIED) */
    char payload_sha256[72]; /* "sha256:<hex>" of the verified signature's payload (the receipt records it) */
    char key_id[72];         /* image_key_id of the key ("" when the key could not be read) */
    char message[1024];      /* one sentence naming the digest and what was missing, wrong or unreachable */
} image_verify_result;

/*
 * Blocking: one whole verification (the signature: v3 referrers bundles, then
 * the v2 .sig image; every attestation type: v3 bundles, then the v2 .att
 * image). Not on the loop's thread. 0 with *out filled (never PENDING), or
 * MB_ENOMEM / MB_EINVAL (a NULL argument); a bad key, repository or digest is
 * a REFUSED result, not an error.
 */
int image_verify_run(image_verify_result *out, net_loop *net, const image_verify_input *in);

typedef struct image_verifier image_verifier;

/* on_done(ctx, key) is called (on the verifier's thread, short: it enqueues) for each waiting key when a
 * verification ends. 0, MB_ENOMEM or MB_ERROR (the thread could not be made). */
int image_verifier_new(image_verifier **out, net_loop *net, void (*on_done)(void *ctx, const char *key), void *ctx);

/* Cancels the verification running, joins the thread and frees; accepts NULL. Before the net loop is freed. */
void image_verifier_free(image_verifier *v);

/*
 * Never blocks: the cached result for in, or PENDING after queueing one
 * verification per cache key (the SHA-256 of: repository, digest, the key's
 * PEM, the attestation list, insecure, and the hashes of the CA and of the
 * docker config; no secret is kept in a key) and remembering `key` (the
 * caller's workqueue key, may be NULL; up to 64 per run, more are not
 * notified and must poll) to notify once when it ends. Results are kept by
 * LRU, at most IMAGE_VERIFY_CACHE_MAX (pending runs are never dropped):
 * VERIFIED until pushed out; REFUSED for IMAGE_VERIFY_REFUSED_TTL_MS (a
 * signature pushed later is seen); UNREACHABLE is answered for
 * IMAGE_VERIFY_RETRY_MS after it was found, then the next get starts again
 * (a registry that is down is asked at most once per that interval per cache
 * key). A key PEM that cannot be read is an immediate REFUSED result with the
 * reader's message, nothing queued. 0, MB_ENOMEM or MB_EINVAL (a NULL
 * argument). The input is copied: it may go once this returns.
 */
int image_verifier_get(image_verify_result *out, image_verifier *v, const image_verify_input *in, const char *key);

#define IMAGE_VERIFY_REFUSED_TTL_MS 30000L
#define IMAGE_VERIFY_RETRY_MS 5000L
#define IMAGE_VERIFY_CACHE_MAX 256

/* For tests and metrics: how many verifications have run (cache hits not counted). */
unsigned long image_verifier_runs(const image_verifier *v);

/* Tests: the clock the cache ages by (monotonic ms); NULL restores the real one. */
void image_verifier_set_clock(image_verifier *v, long long (*now_ms)(void *ctx), void *ctx);

/* Tests: how many results the cache keeps (IMAGE_VERIFY_CACHE_MAX unless set; at least 1). */
void image_verifier_set_capacity(image_verifier *v, size_t max);

#endif
