/*
 * PLACEHOLDER, replaced by the real kube/config.c on merge: just enough of
 * config.h for the client branch to build and test (static token and PEM
 * copies, freeing). Loading kubeconfig files is not implemented here.
 */
#include "kube/config.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static int pem_copy(kube_pem *out, const kube_pem *in)
{
    out->data = NULL;
    out->len = 0;
    if (!in->data || in->len == 0)
        return 0;
    if (!(out->data = malloc(in->len + 1)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    memcpy(out->data, in->data, in->len);
    out->data[in->len] = '\0';
    out->len = in->len;
    return 0;
}

static void pem_clear(kube_pem *p)
{
    free(p->data);
    p->data = NULL;
    p->len = 0;
}

int kube_config_load(kube_config **out, const char *path, const char *context)
{
    (void)path;
    (void)context;
    *out = NULL;
    return mb_error_set(MB_EINVAL, "kubeconfig loading is not implemented in the placeholder config.c");
}

int kube_config_load_incluster(kube_config **out, const char *root)
{
    (void)root;
    *out = NULL;
    return mb_error_set(MB_EINVAL, "in-cluster configuration is not implemented in the placeholder config.c");
}

int kube_config_credentials(kube_credentials *out, kube_config *cfg)
{
    int err = 0;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&cfg->lock);
    if (cfg->token && !(out->bearer = strdup(cfg->token)))
        err = mb_error_set(MB_ENOMEM, "out of memory");
    if (!err)
        err = pem_copy(&out->cert, &cfg->client_cert);
    if (!err)
        err = pem_copy(&out->key, &cfg->client_key);
    pthread_mutex_unlock(&cfg->lock);
    if (err < 0)
        kube_credentials_clear(out);
    return err;
}

void kube_credentials_clear(kube_credentials *c)
{
    if (!c)
        return;
    free(c->bearer);
    c->bearer = NULL;
    pem_clear(&c->cert);
    pem_clear(&c->key);
}

void kube_config_free(kube_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source);
    free(cfg->context);
    free(cfg->server);
    free(cfg->namespace);
    free(cfg->tls_server_name);
    pem_clear(&cfg->ca);
    pem_clear(&cfg->client_cert);
    pem_clear(&cfg->client_key);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->cached_token);
    pem_clear(&cfg->exec_cert);
    pem_clear(&cfg->exec_key);
    if (cfg->exec) {
        free(cfg->exec->command);
        for (char **a = cfg->exec->args; a && *a; a++)
            free(*a);
        free(cfg->exec->args);
        for (char **e = cfg->exec->env; e && *e; e++)
            free(*e);
        free(cfg->exec->env);
        free(cfg->exec->api_version);
        free(cfg->exec);
    }
    pthread_mutex_destroy(&cfg->lock);
    free(cfg);
}
