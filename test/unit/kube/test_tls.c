/*
 * TLS of the Kubernetes client against the replay server over HTTPS on
 * loopback, with a PKI made for the test: the CA and the client certificate
 * come from memory, a certificate from another CA or for another name fails
 * with MB_ETLS and a message that says which, tls_server_name verifies the
 * name it gives, and insecure_skip_tls_verify skips verification.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/client.h"
#include "replay.h"
#include "testpki.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char OBJ[] = "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"kfm\"}}";

static void pem_set(kube_pem *p, const char *pem)
{
    p->data = strdup(pem);
    assert_non_null(p->data);
    p->len = strlen(pem);
}

/* A server with a certificate for san; client certificates signed by the test CA are required. */
static replay *server_start(testpki *pki, const char *san)
{
    replay *srv = NULL;
    assert_int_equal(testpki_make(pki, san), 0);
    replay_opts opts = {.tls_cert = pki->server_cert, .tls_key = pki->server_key, .tls_client_ca = pki->ca_cert};
    assert_int_equal(replay_start(&srv, &opts), 0);
    assert_non_null(strstr(replay_url(srv), "https://"));
    return srv;
}

static kube_client *client_for(replay *srv, const char *ca, const testpki *pki, const char *server_name, bool insecure)
{
    kube_client *c = NULL;
    kube_config *cfg = replay_config(srv, "tls-token");
    if (ca)
        pem_set(&cfg->ca, ca);
    pem_set(&cfg->client_cert, pki->client_cert);
    pem_set(&cfg->client_key, pki->client_key);
    if (server_name)
        cfg->tls_server_name = strdup(server_name);
    cfg->insecure_skip_tls_verify = insecure;
    assert_int_equal(kube_client_new(&c, cfg, &(kube_client_opts){.max_retries = -1}), 0);
    return c;
}

static void test_ca_and_client_cert_from_memory(void **state)
{
    (void)state;
    testpki pki;
    replay *srv = server_start(&pki, "IP:127.0.0.1");
    replay_add(srv, &(replay_reply){.status = 200, .body = OBJ});
    replay_add(srv, &(replay_reply){.status = 200, .body = OBJ});
    kube_client *c = client_for(srv, pki.ca_cert, &pki, NULL, false);

    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), 0);
    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), 0);
    const replay_request *q = replay_get(srv, 0);
    assert_non_null(q);
    assert_string_equal(q->target, "/api/v1/namespaces/kfm");
    assert_string_equal(q->client_cn, "membrane-test-client");
    assert_string_equal(replay_header(q, "authorization"), "Bearer tls-token");
    assert_int_equal(replay_get(srv, 1)->conn, q->conn); /* the TLS connection was reused */

    kube_client_free(c);
    replay_free(srv);
    testpki_clear(&pki);
}

static void test_other_ca_is_refused(void **state)
{
    (void)state;
    testpki pki;
    replay *srv = server_start(&pki, "IP:127.0.0.1");
    replay_add(srv, &(replay_reply){.status = 200, .body = OBJ});
    kube_client *c = client_for(srv, pki.other_ca_cert, &pki, NULL, false);

    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), MB_ETLS);
    char want[256];
    snprintf(want, sizeof(want),
             "TLS: the server certificate of %s is not signed by the configured certificate-authority: ",
             replay_url(srv));
    assert_non_null(strstr(mb_error_last(), want));
    assert_int_equal(replay_count(srv), 0);

    kube_client_free(c);
    replay_free(srv);
    testpki_clear(&pki);
}

static void test_name_mismatch_and_tls_server_name(void **state)
{
    (void)state;
    testpki pki;
    replay *srv = server_start(&pki, "DNS:kubernetes.default.svc");
    replay_add(srv, &(replay_reply){.status = 200, .body = OBJ});

    kube_client *c = client_for(srv, pki.ca_cert, &pki, NULL, false);
    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), MB_ETLS);
    assert_non_null(strstr(mb_error_last(), "is not valid for the host name"));
    assert_int_equal(replay_count(srv), 0);
    kube_client_free(c);

    /* the certificate's name given as tls_server_name: verified against it, connected to the server */
    c = client_for(srv, pki.ca_cert, &pki, "kubernetes.default.svc", false);
    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), 0);
    const replay_request *q = replay_get(srv, 0);
    assert_non_null(q);
    const char *host = replay_url(srv) + strlen("https://");
    assert_string_equal(replay_header(q, "host"), host); /* the HTTP authority stays the server's */
    kube_client_free(c);

    replay_free(srv);
    testpki_clear(&pki);
}

static void test_insecure_skip_verify(void **state)
{
    (void)state;
    testpki pki;
    replay *srv = server_start(&pki, "DNS:elsewhere.example");
    replay_add(srv, &(replay_reply){.status = 200, .body = OBJ});
    kube_client *c = client_for(srv, pki.other_ca_cert, &pki, NULL, true);
    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), 0);
    assert_int_equal(replay_count(srv), 1);
    kube_client_free(c);
    replay_free(srv);
    testpki_clear(&pki);
}

static void test_system_store_message(void **state)
{
    (void)state;
    testpki pki;
    replay *srv = server_start(&pki, "IP:127.0.0.1");
    kube_client *c = client_for(srv, NULL, &pki, NULL, false); /* no CA configured: the system trust store */
    assert_int_equal(kube_get(NULL, c, &KUBE_NAMESPACES, NULL, "kfm"), MB_ETLS);
    assert_non_null(strstr(mb_error_last(), "system trust store"));
    kube_client_free(c);
    replay_free(srv);
    testpki_clear(&pki);
}

int main(void)
{
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_and_client_cert_from_memory),
        cmocka_unit_test(test_other_ca_is_refused),
        cmocka_unit_test(test_name_mismatch_and_tls_server_name),
        cmocka_unit_test(test_insecure_skip_verify),
        cmocka_unit_test(test_system_store_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
