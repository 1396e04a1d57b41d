/*
 * The verdict sentence shared by the dataset gate judges, and the parse of a
 * catalog document under the API's size limit.
 */
#include "dataset/verdict.h"

#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

int dataset_fail(char msg[DATASET_MSG_MAX], int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, DATASET_MSG_MAX, fmt, ap);
    va_end(ap);
    return mb_error_set(code, "%s", msg);
}

int dataset_nomem(char msg[DATASET_MSG_MAX])
{
    return dataset_fail(msg, MB_ENOMEM, "out of memory while judging the gate");
}

int dataset_parse_doc(cJSON **out, const char *doc, size_t len, const char *what, int object, char msg[DATASET_MSG_MAX])
{
    cJSON *v = NULL;
    const char *end = NULL;

    *out = NULL;
    if (!doc)
        return dataset_fail(msg, MB_EINVAL, "%s was not read: no bytes to judge", what);
    if (len > DATASET_DOC_MAX)
        return dataset_fail(msg, MB_EINVAL, "%s is %zu bytes, more than the 4 MiB a catalog document may have", what,
                            len);
    if (!(v = cJSON_ParseWithLengthOpts(doc, len, &end, 0))) {
        /* cJSON cannot tell a failed allocation from bad text: text that parses a second time was memory */
        cJSON *again = cJSON_ParseWithLengthOpts(doc, len, NULL, 0);
        if (again) {
            cJSON_Delete(again);
            return dataset_nomem(msg);
        }
        return dataset_fail(msg, MB_EINVAL, "%s is not JSON (near byte %zu): publish it as JSON", what,
                            (size_t)(end && end >= doc ? end - doc : 0));
    }
    if (object && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return dataset_fail(msg, MB_EINVAL, "%s is not a JSON object", what);
    }
    *out = v;
    return 0;
}
