/*
 * Private to the membrane probe: what probe_plan.c (the script, the plan,
 * the Pod objects, reports and judging, all pure) shares with probe.c (the
 * pods' lifecycle through the API).
 */
#ifndef MB_VERIFY_PROBE_PRIVATE_H
#define MB_VERIFY_PROBE_PRIVATE_H

#include "verify/probe.h"

/* *out = a copy of s ("" for NULL); 0 or MB_ENOMEM. */
int probe_dup_str(char **out, const char *s);

/* *out = a printf into a new string; 0 or MB_ENOMEM (*out NULL then). */
int probe_dup_printf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
