/*
 * Resolution and comparison of the URLs a catalog document names, with
 * libcurl's URL API (no hand-written resolver).
 */
#include "dataset/urls.h"

#include "util/error.h"
#include "util/json.h"
#include "util/text.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static int curlu_error(CURLUcode uc, const char *ref)
{
    if (uc == CURLUE_OUT_OF_MEMORY)
        return mb_error_set(MB_ENOMEM, "out of memory resolving a URL");
    return mb_error_set(MB_EINVAL, "\"%.200s\" is not a URL (%s)", ref, curl_url_strerror(uc));
}

static int resolve_once(char **out, const char *base, const char *ref)
{
    CURLU *u = NULL;
    CURLUcode uc;
    char *got = NULL;
    int err = 0;

    *out = NULL;
    if (!ref || !*ref || mb_has_control(ref) || strchr(ref, ' '))
        return mb_error_set(MB_EINVAL, "\"%.200s\" is not a URL", ref ? ref : "");
    if (!(u = curl_url()))
        return mb_error_set(MB_ENOMEM, "out of memory resolving a URL");
    if (base && *base) {
        if ((uc = curl_url_set(u, CURLUPART_URL, base, 0)) != CURLUE_OK) {
            err = curlu_error(uc, base);
            goto done;
        }
    }
    /* with a base set, a relative ref is resolved against it (RFC 3986 section 5) */
    if ((uc = curl_url_set(u, CURLUPART_URL, ref, 0)) != CURLUE_OK) {
        err = curlu_error(uc, ref);
        goto done;
    }
    if ((uc = curl_url_get(u, CURLUPART_URL, &got, 0)) != CURLUE_OK) {
        err = curlu_error(uc, ref);
        goto done;
    }
    if (!(*out = strdup(got)))
        err = mb_error_set(MB_ENOMEM, "out of memory resolving a URL");
done:
    curl_free(got);
    curl_url_cleanup(u);
    return err;
}

/*
 * libcurl reports some of its own failed allocations while resolving as a
 * bad URL (curl_url_set builds the resolved URL with curl_maprintf and maps
 * its failure to CURLUE_MALFORMED_INPUT or the like): a URL refused once is
 * resolved a second time, and only a second refusal is the URL's fault. The
 * input is the same, so a real verdict is the same both times.
 */
int dataset_url_resolve(char **out, const char *base, const char *ref)
{
    int err = resolve_once(out, base, ref);
    if (err == MB_EINVAL)
        err = resolve_once(out, base, ref);
    return err;
}

int dataset_url_among_artifacts(bool *out, const char *url, const cJSON *spec)
{
    const cJSON *a = NULL;

    *out = false;
    cJSON_ArrayForEach(a, json_get(spec, "artifacts", NULL)) {
        char *norm = NULL;
        int err = dataset_url_resolve(&norm, NULL, json_str(a, "url", NULL));
        if (err == MB_ENOMEM)
            return err;
        if (err == 0 && strcmp(norm, url) == 0)
            *out = true;
        free(norm);
        if (*out)
            break;
    }
    mb_error_clear();
    return 0;
}
