/*
 * The image gate's lookup (spec.image.verify): what the release names (the
 * cosign public key, the registry credentials and CA, in Secrets read through
 * the API each time, never cached; the attestations asked for) into the image
 * verifier's input, and the verifier's results for the digests a plan asks
 * about into the verdicts release_decide reads. The verifier (image/verify.h)
 * does the work off the workers and caches it per digest and key; a lookup
 * never waits for it.
 */
#ifndef MB_RELEASE_IMAGES_H
#define MB_RELEASE_IMAGES_H

#include "image/verify.h"
#include "kube/client.h"
#include "release/decide.h"

#include <cjson/cJSON.h>

/* The verdicts of one lookup; obs.images points into it. */
typedef struct {
    image_verify_result results[RELEASE_VERIFY_DIGESTS];
    release_image_verdict verdicts[RELEASE_VERIFY_DIGESTS];
    size_t n;
} release_image_lookup;

/*
 * The verdicts on plan->verify_digests for release, into *out: 0 when every
 * one is there (out->n of them); 1 when a verification still runs (v calls
 * back with key when it ends); MB_ENOMEM. A Secret that cannot be read, or a
 * key that is no public key, is a verdict too (unreachable or refused, its
 * message naming the field), never an error.
 */
int release_images_lookup(release_image_lookup *out, image_verifier *v, kube_client *client, const cJSON *release,
                          const release_plan *plan, const char *key);

#endif
