/*
 * Throw-away PKI for TLS tests, made with OpenSSL at run time: a CA, a server
 * certificate and a client certificate signed by it, and a second CA that
 * signed nothing here. Everything is PEM in memory.
 */
#ifndef TEST_TESTPKI_H
#define TEST_TESTPKI_H

typedef struct {
    char *ca_cert;
    char *server_cert;
    char *server_key;
    char *client_cert; /* CN "membrane-test-client" */
    char *client_key;
    char *other_ca_cert;
} testpki;

/* server_san: the server certificate's subjectAltName, e.g. "IP:127.0.0.1" or "DNS:kubernetes.default". 0 or -1. */
int testpki_make(testpki *out, const char *server_san);

void testpki_clear(testpki *p);

#endif
