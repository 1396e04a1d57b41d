/*
 * Where the Kubernetes API is and how to authenticate to it: kubeconfig files
 * (contexts, tokens, client certificates, CAs, exec credential plugins) and
 * the in-cluster service-account configuration. Certificates, keys and CAs are
 * held in memory as PEM; credentials that can change (tokenFile, exec plugins,
 * the in-cluster token) are refreshed by kube_config_credentials().
 *
 * The HTTP layer reads server, tls_server_name, insecure_skip_tls_verify and
 * ca from the struct, and asks kube_config_credentials() for the bearer token
 * and client certificate of each request. Everything else in the struct is
 * this module's business.
 */
#ifndef MB_KUBE_CONFIG_H
#define MB_KUBE_CONFIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct {
    char *data; /* PEM bytes, NUL-terminated */
    size_t len;
} kube_pem;

typedef struct {
    char *command;     /* relative paths with a '/' resolved against the kubeconfig's directory */
    char **args;       /* NULL-terminated */
    char **env;        /* NULL-terminated "NAME=value" pairs added to the environment */
    char *api_version; /* client.authentication.k8s.io/v1 (or v1beta1) */
    bool provide_cluster_info;
    char *install_hint; /* shown when the command cannot be started; may be NULL */
    char *exec_info;    /* KUBERNETES_EXEC_INFO: the ExecCredential the plugin receives */
    char *origin;       /* "kubeconfig FILE: users[\"NAME\"].user.exec", for messages */
    long timeout_ms;    /* how long one run may take; KUBE_EXEC_TIMEOUT_MS after loading */
} kube_exec_config;

#define KUBE_EXEC_TIMEOUT_MS 60000L
/* Exec credentials are refreshed this long before they expire, or 10% of their lifetime if longer. */
#define KUBE_EXEC_REFRESH_MARGIN_S 30
/* After a failed refresh while the current credential is still valid, the plugin is not re-run for this long. */
#define KUBE_EXEC_RETRY_S 5

typedef struct kube_config {
    char *source;    /* the file(s) or "in-cluster", for messages */
    char *context;   /* the context used (NULL in-cluster) */
    char *server;    /* https://host:port, no trailing slash */
    char *namespace; /* the context's or in-cluster namespace; may be NULL */
    char *tls_server_name;
    bool insecure_skip_tls_verify;
    kube_pem ca;          /* empty: system trust store */
    kube_pem client_cert; /* empty: none (or from exec) */
    kube_pem client_key;
    char *token;            /* static bearer token, may be NULL */
    char *token_file;       /* re-read when it changes (wins over token), may be NULL */
    kube_exec_config *exec; /* may be NULL */

    /* credential cache; guarded by lock */
    pthread_mutex_t lock;
    char *cached_token; /* last good read of token_file */
    time_t cached_token_mtime;
    long cached_token_mtime_ns;
    long long cached_token_size;
    unsigned long long cached_token_ino;
    unsigned long long cached_token_dev;
    bool token_file_warned; /* a failed re-read was logged */
    char *exec_token;
    time_t exec_obtained;
    time_t exec_expiry;   /* 0: no expiry given */
    time_t exec_next_try; /* after a failed refresh: not before this */
    bool exec_valid;
    kube_pem exec_cert;
    kube_pem exec_key;
} kube_config;

/* The credentials to present on one request: copies owned by the caller. */
typedef struct {
    char *bearer;  /* NULL: none */
    kube_pem cert; /* empty: none */
    kube_pem key;
} kube_credentials;

typedef struct {
    const char *path;           /* --kubeconfig; NULL or "": $KUBECONFIG, ~/.kube/config, in-cluster */
    const char *context;        /* --context; NULL: current-context */
    const char *incluster_root; /* prepended to the service-account paths; NULL: "" */
} kube_config_opts;

/*
 * Loads configuration with kubectl's precedence: path if non-NULL, else
 * $KUBECONFIG (a colon-separated list merged as kubectl merges it), else
 * ~/.kube/config, else in-cluster. context NULL means current-context.
 * On error the message names the file and the field.
 */
int kube_config_load(kube_config **out, const char *path, const char *context);

/* kube_config_load with every knob; opts may be NULL. */
int kube_config_load_opts(kube_config **out, const kube_config_opts *opts);

/* Loads the in-cluster configuration; root is prepended to the service-account paths ("" in production). */
int kube_config_load_incluster(kube_config **out, const char *root);

/* Credentials for the next request; re-reads tokenFile when changed and runs the exec plugin before expiry. Thread-safe. */
int kube_config_credentials(kube_credentials *out, kube_config *cfg);

/*
 * Forgets the exec plugin's credential so that the next kube_config_credentials()
 * runs the plugin again (call it after a 401). Thread-safe.
 */
void kube_config_credentials_invalidate(kube_config *cfg);

/* Frees (and wipes) what c holds and zeroes it; accepts NULL. */
void kube_credentials_clear(kube_credentials *c);

/* Frees cfg, wiping its secrets; accepts NULL. */
void kube_config_free(kube_config *cfg);

#endif
