/* Between verify.c (one verification) and verifier.c (the cache and its thread). */
#ifndef MB_IMAGE_VERIFY_PRIVATE_H
#define MB_IMAGE_VERIFY_PRIVATE_H

#include "image/registry.h"
#include "image/signature.h"
#include "image/verify.h"

/* image_verify_run, cancellable through cancel (may be NULL). */
int image_verify_run_with(image_verify_result *out, net_loop *net, const image_verify_input *in,
                          registry_cancel *cancel);

/* Loads in's key: 0, MB_EINVAL (err says why, an empty key too) or MB_ENOMEM. */
int image_input_key(image_key **out, const image_verify_input *in, char err[IMAGE_SIG_ERROR_MAX]);

#endif
