/*
 * The verdict of a DatasetPromotion gate judge: every judge in
 * controller/dataset/ is pure (document bytes and the spec in, no I/O) and
 * returns 0 when its gate passes, MB_EINVAL when it fails or cannot see what
 * it judges (fail closed), or MB_ENOMEM; in both error cases msg holds one
 * sentence that names the document, the field and what to fix, as the gate's
 * status.gates[].message shows it. The same sentence is the thread's
 * mb_error_last().
 */
#ifndef MB_DATASET_VERDICT_H
#define MB_DATASET_VERDICT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define DATASET_MSG_MAX 512

/* Writes the sentence into msg (cut to fit), records it as the last error and returns code. */
int dataset_fail(char msg[DATASET_MSG_MAX], int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* dataset_fail(msg, MB_ENOMEM, "out of memory ..."). */
int dataset_nomem(char msg[DATASET_MSG_MAX]);

/*
 * Parses a catalog document (at most DATASET_DOC_MAX bytes) into *out. what
 * names it in messages ("the DCAT document"). 0, MB_EINVAL (too large, not
 * JSON, not an object when object is true) or MB_ENOMEM.
 */
#define DATASET_DOC_MAX (4u * 1024u * 1024u)
int dataset_parse_doc(cJSON **out, const char *doc, size_t len, const char *what, int object,
                      char msg[DATASET_MSG_MAX]);

#endif
