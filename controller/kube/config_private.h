/*
 * Private to controller/kube: what the kubeconfig loader (config.c), the
 * credential handling (credentials.c) and the exec credential plugins
 * (exec.c) share that is not part of the public API (config.h). Errors are
 * mb_error codes with the message in mb_error_last(), as everywhere.
 */
#ifndef MB_KUBE_CONFIG_PRIVATE_H
#define MB_KUBE_CONFIG_PRIVATE_H

#include "kube/config.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/stat.h>

/* MB_ENOMEM with the loader's message. */
int kube_config_nomem(void);

/* *out = strdup(s), NULL for NULL; 0 or MB_ENOMEM. */
int kube_config_strdup(char **out, const char *s);

/* strerror_r into buf (the GNU variant); returns the text. */
const char *kube_errno_text(int e, char *buf, size_t len);

/*
 * Reads a whole file (at most 16 MiB) into a NUL-terminated buffer;
 * when st_out is non-NULL it receives the fstat of the descriptor that was
 * read. MB_ENOTFOUND when it does not exist, MB_EIO, MB_ENOMEM.
 */
int kube_file_read(char **out, size_t *len, const char *path, struct stat *st_out);

/* What a PEM block must hold: one or more certificates, one certificate, a private key. */
typedef enum { KUBE_PEM_CERTS, KUBE_PEM_CERT, KUBE_PEM_KEY } kube_pem_kind;

/* Wipes and frees p's bytes and empties it. */
void kube_pem_clear(kube_pem *p);

/* A NUL-terminated copy of src (empty for empty); 0 or MB_ENOMEM. */
int kube_pem_dup(kube_pem *out, const kube_pem *src);

/* 0 when pem holds what kind asks for; MB_EINVAL with a reason otherwise, MB_ENOMEM. */
int kube_pem_check(const kube_pem *pem, kube_pem_kind kind);

/* 0 when the first certificate of cert belongs to key; MB_EINVAL, MB_ENOMEM. */
int kube_pem_check_pair(const kube_pem *cert, const kube_pem *key);

/* Trims surrounding whitespace in place; MB_EINVAL if empty or a control character remains. */
int kube_token_clean(char *t);

/* Reads cfg->token_file into cfg->cached_token and remembers what it looked like. */
int kube_token_file_load(kube_config *cfg);

/* Frees x and what it holds; accepts NULL. */
void kube_exec_config_free(kube_exec_config *x);

/* Builds cfg->exec->exec_info, the ExecCredential the plugin receives in KUBERNETES_EXEC_INFO. */
int kube_exec_info_build(kube_config *cfg, const cJSON *cluster_body);

/*
 * Runs the exec plugin when cfg has no credential from it or its credential
 * is about to expire; keeps a still-valid one when a run fails. Call with
 * cfg->lock held.
 */
int kube_exec_refresh(kube_config *cfg);

#endif
