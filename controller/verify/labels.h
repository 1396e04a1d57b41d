/*
 * metav1.LabelSelector, compiled once and matched against label maps
 * (metadata.labels of Pods and Namespaces as the API returns them). It follows
 * apimachinery's LabelSelectorAsSelector: matchLabels and matchExpressions are
 * ANDed; an empty selector {} matches every object; a nil selector (a missing
 * field or JSON null handed to labels_selector_parse) matches none. What a
 * missing selector means in a particular API field (a NetworkPolicy peer, a
 * membrane client entry) is the caller's decision: check for presence before
 * parsing. An invalid selector (unknown operator, In/NotIn without values,
 * Exists/DoesNotExist with values, a non-string value) fails to parse, so a
 * caller can never mistake "cannot evaluate" for "does not match".
 */
#ifndef MB_VERIFY_LABELS_H
#define MB_VERIFY_LABELS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct labels_selector labels_selector;

/*
 * Compiles sel (a LabelSelector object, or NULL / JSON null for the nil
 * selector). where names the field for error messages, e.g.
 * "NetworkPolicy kfm/deny spec.podSelector". 0, MB_EINVAL (the message names
 * the field and what is wrong) or MB_ENOMEM. *out belongs to the caller.
 */
int labels_selector_parse(labels_selector **out, const cJSON *sel, const char *where);

/* Whether the label map (an object of strings; NULL or null = no labels) satisfies s. */
bool labels_selector_matches(const labels_selector *s, const cJSON *labels);

/* True for {} (matches everything). */
bool labels_selector_is_everything(const labels_selector *s);

/* True for the nil selector (matches nothing). */
bool labels_selector_is_nothing(const labels_selector *s);

/*
 * The selector in kubectl's syntax ("app=kfm-ui,tier in (a,b),!legacy"),
 * "<all>" for {} and "<none>" for nil. Borrowed: lives as long as s.
 */
const char *labels_selector_string(const labels_selector *s);

void labels_selector_free(labels_selector *s);

/* The value a hypothetical object gives a label that the selector only requires to exist. */
#define LABELS_PLACEHOLDER "membrane-hypothetical"

/*
 * The labels of a hypothetical object that s selects: every matchLabels
 * entry, the first value of each In (the first one every other requirement
 * on that key accepts), LABELS_PLACEHOLDER for each Exists, nothing for
 * DoesNotExist and NotIn. *out is a new object of strings, the caller's; {}
 * for the selector {}. MB_EINVAL when no labels can satisfy s (the nil
 * selector, or contradicting requirements such as app=a with app in (b),
 * or Exists with DoesNotExist on one key), MB_ENOMEM.
 */
int labels_selector_example(cJSON **out, const labels_selector *s);

/* One-shot parse and match of sel against labels; errors as labels_selector_parse. */
int labels_selector_match(bool *out, const cJSON *sel, const cJSON *labels);

#endif
