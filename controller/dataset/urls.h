/*
 * URLs as the dataset gates compare them: a catalog's reference (a STAC
 * asset href, a DCAT download URL) resolved against the document's own URL by
 * RFC 3986 (libcurl's CURLU does the resolution), and the test that it is one
 * of spec.artifacts[].url. Both sides are compared in the form CURLU gives
 * back (scheme and host as curl normalizes them), so
 * "HTTPS://store.example/a" and "https://store.example/a" are the same URL.
 */
#ifndef MB_DATASET_URLS_H
#define MB_DATASET_URLS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/*
 * ref resolved against base (base may be NULL: ref must then be absolute),
 * normalized, into *out (caller frees). 0, MB_EINVAL (not a URL, or relative
 * with no base; the message names ref) or MB_ENOMEM.
 */
int dataset_url_resolve(char **out, const char *base, const char *ref);

/*
 * Whether url (absolute, normalized by dataset_url_resolve) is among the
 * spec's artifacts[].url. *out is set; 0 or MB_ENOMEM. An artifact URL that
 * is not a URL matches nothing.
 */
int dataset_url_among_artifacts(bool *out, const char *url, const cJSON *spec);

#endif
