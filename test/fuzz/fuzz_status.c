/*
 * libFuzzer target for the metav1.Status parser: the body of any non-2xx
 * answer is untrusted, and so is the object of a watch ERROR event. The first
 * byte of the input picks the HTTP status (0 is "take it from the body", as a
 * watch ERROR event does); the rest is the body, handed over without a NUL so
 * that ASan sees any read past its end. Whatever the body, every parse must
 * give a negative code, a non-empty message and a non-negative retry delay.
 */
#include "kube/client.h"
#include "kube/client_private.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const long codes[] = {0, 200, 400, 401, 403, 404, 405, 409, 410, 413, 422, 429, 500, 503, 504, 599};

static void check(int code, const kube_status *st)
{
    if (code >= 0 || st->message[0] == '\0' || st->retry_after < 0 || mb_error_last()[0] == '\0')
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kube_status st;
    cJSON *doc = NULL;
    char *copy = NULL;
    long http_code, retry_after;

    if (size == 0)
        return 0;
    /* 0..127: a status the server really sends; 128..255: any code from 100 to 608 */
    http_code = data[0] < 128 ? codes[data[0] % (sizeof(codes) / sizeof(codes[0]))] : 100 + (data[0] - 128) * 4;
    retry_after = data[0] % 7;
    data++, size--;

    check(kube_status_parse(&st, http_code, (const char *)data, size), &st);
    check(kube_status_record(http_code, (const char *)data, size, retry_after), kube_status_last());

    /* a watch ERROR event's object: parsed first, then read as a Status even without "kind" */
    if (!(copy = malloc(size + 1)))
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    if ((doc = cJSON_ParseWithLength(copy, size)) && cJSON_IsObject(doc))
        check(kube_status_record_object(doc), kube_status_last());
    cJSON_Delete(doc);
    free(copy);
    return 0;
}
