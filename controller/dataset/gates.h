/*
 * DatasetPromotion: the seven gates of API.md judged on the work's bytes
 * (decide.h says what each state means for the promotion). Private to
 * controller/dataset; pure.
 */
#ifndef MB_DATASET_GATES_H
#define MB_DATASET_GATES_H

#include "dataset/dcat.h"
#include "dataset/decide.h"
#include "dataset/stac.h"
#include "dataset/verdict.h"

#include <stdarg.h>
#include <stdbool.h>

enum {
    DATASET_GATE_CHECKSUMS = 0,
    DATASET_GATE_LICENSE,
    DATASET_GATE_POLICY_LABEL,
    DATASET_GATE_DCAT,
    DATASET_GATE_STAC,
    DATASET_GATE_PROV,
    DATASET_GATE_LINKS,
    DATASET_NGATES
};

typedef enum {
    DATASET_GATE_PENDING = 0,
    DATASET_GATE_PASSED,
    DATASET_GATE_FAILED,      /* only a change of the spec or of the sources helps */
    DATASET_GATE_UNAVAILABLE, /* a server down, a 5xx, a timeout: tried again */
} dataset_gate_state;

typedef struct {
    const char *name; /* static */
    dataset_gate_state state;
    char message[DATASET_MSG_MAX + 256];
} dataset_gate;

/* What the catalog judges read, shared between gates (freed with dataset_judged_free). */
typedef struct {
    dataset_dcat_result dcat;
    dataset_stac_result stac;
    bool dcat_read, stac_read;
    char dcat_msg[DATASET_MSG_MAX], stac_msg[DATASET_MSG_MAX];
} dataset_judged;

extern const char *const dataset_gate_names[DATASET_NGATES];
/* The reason a promotion blocked by that gate shows (<Gate>Failed). */
extern const char *const dataset_gate_reasons[DATASET_NGATES];

/* Judges every gate into out (in order). 0 or MB_ENOMEM; j is freed by the caller in every case. */
int dataset_gates_judge(dataset_gate out[DATASET_NGATES], dataset_judged *j, const dataset_observed *o);

void dataset_judged_free(dataset_judged *j);

#endif
