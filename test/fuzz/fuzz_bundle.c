/*
 * libFuzzer target for the OPA bundle reader and signature check
 * (policy/bundle.h). The input is one flag byte, then the bytes:
 *   bit 0 set: the bytes are the .tar.gz as fetched; clear: they are the tar,
 *              gzipped here first (a mutated gzip stream rarely gets past its
 *              CRC, so most inputs go in as tar);
 *   bit 1 set: .signatures.json of the bundle read is taken as a JWS payload
 *              and replaced by {"signatures":[<that payload signed with a fixed
 *              Ed25519 key>]} before bundle_verify_signatures runs with that
 *              key, so that the payload's files and OPA's hashing of every
 *              file are reached; clear: the bundle's .signatures.json is
 *              verified as it is, with the same key.
 * The whole input also goes to bundle_decision_matches as an answer body.
 * Checked properties: bundle_read returns 0 with a bundle, or MB_EINVAL with a
 * message and none (never MB_ENOMEM or another code); a bundle read has
 * normalized names (no leading "/", no "." , ".." or empty segment), no name
 * twice, a .manifest, at least one .rego, roots of strings, NUL-terminated
 * data, sizes that sum to unpacked_bytes within the limit; the signature check
 * returns 0 or MB_EINVAL with a message; a decision answer has got NULL
 * exactly when the body is not a JSON object.
 */
#include "policy/bundle.h"
#include "util/base64.h"
#include "util/error.h"
#include "fuzz_key.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UNPACKED (1 << 20)

static EVP_PKEY *key;
static char *key_pem;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t pem_len;
    (void)argc;
    (void)argv;
    key = fuzz_key_new("membrane fuzz_bundle fixed seed", &key_pem, &pem_len);
    return 0;
}

typedef struct {
    unsigned char *data;
    size_t len, cap;
} sink;

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
    (void)a;
    sink *s = ctx;
    if (s->cap - s->len < n) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < n)
            cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (!d)
            abort();
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, buf, n);
    s->len += n;
    return (la_ssize_t)n;
}

/* bytes gzipped with libarchive's raw writer (one entry, no headers) */
static void gzip(sink *out, const uint8_t *data, size_t size)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    if (!a || !e || archive_write_add_filter_gzip(a) != ARCHIVE_OK || archive_write_set_format_raw(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, out, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
        abort();
    archive_entry_set_pathname(e, "tar");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)size);
    if (archive_write_header(a, e) != ARCHIVE_OK)
        abort();
    if (size && archive_write_data(a, data, size) != (la_ssize_t)size)
        abort();
    if (archive_write_close(a) != ARCHIVE_OK)
        abort();
    archive_entry_free(e);
    archive_write_free(a);
}

static char *b64url(const void *data, size_t len)
{
    char *s = NULL;
    if (mb_base64_encode(&s, data, len) < 0)
        abort();
    char *o = s;
    for (char *p = s; *p; p++)
        if (*p != '=')
            *o++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    *o = '\0';
    return s;
}

/* {"signatures":["<header>.<payload>.<Ed25519 signature>"]} */
static char *signatures_for(const unsigned char *payload, size_t len)
{
    static const char header[] = "{\"alg\":\"EdDSA\",\"kid\":\"fuzz\"}";
    char *h = b64url(header, strlen(header)), *p = b64url(payload, len);
    size_t in_len = strlen(h) + 1 + strlen(p);
    char *input = malloc(in_len + 1);
    if (!input)
        abort();
    snprintf(input, in_len + 1, "%s.%s", h, p);
    unsigned char sig[64];
    fuzz_key_sign(sig, key, input, in_len);
    char *s = b64url(sig, sizeof(sig));
    size_t n = in_len + strlen(s) + 32;
    char *out = malloc(n);
    if (!out)
        abort();
    snprintf(out, n, "{\"signatures\":[\"%s.%s\"]}", input, s);
    free(h);
    free(p);
    free(input);
    free(s);
    return out;
}

static bool clean_name(const char *n)
{
    if (!n[0] || n[0] == '/')
        return false;
    for (const char *s = n;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!slash)
            return true;
        s = slash + 1;
    }
}

static void check_bundle(const bundle *b)
{
    long long total = 0;
    bool manifest = false;
    size_t rego = 0;
    for (size_t i = 0; i < b->nfiles; i++) {
        const bundle_file *f = &b->files[i];
        if (!clean_name(f->name) || f->data[f->len] != '\0')
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(b->files[j].name, f->name) == 0)
                abort();
        total += (long long)f->len;
        manifest |= f == b->manifest;
        size_t n = strlen(f->name);
        rego += n >= 5 && strcmp(f->name + n - 5, ".rego") == 0;
        if (bundle_find(b, f->name) != f)
            abort();
    }
    if (!manifest || strcmp(b->manifest->name, ".manifest") != 0 || rego != b->rego_modules || rego == 0 ||
        total != b->unpacked_bytes || total > MAX_UNPACKED || !b->revision || !cJSON_IsArray(b->roots) ||
        cJSON_GetArraySize(b->roots) == 0)
        abort();
    const cJSON *r;
    cJSON_ArrayForEach(r, b->roots) {
        if (!cJSON_IsString(r))
            abort();
    }
    if (b->signatures && strcmp(b->signatures->name, ".signatures.json") != 0)
        abort();
    /* every root covers itself */
    if (bundle_missing_root(b, b->roots) != NULL)
        abort();
}

static void verify(bundle *b, bool resign)
{
    char err[BUNDLE_ERROR_MAX];
    bundle_file *sigs = (bundle_file *)b->signatures;
    if (resign && sigs) {
        char *replaced = signatures_for(sigs->data, sigs->len);
        free(sigs->data);
        sigs->data = (unsigned char *)replaced;
        sigs->len = strlen(replaced);
    }
    bundle_signing s = {.public_key_pem = key_pem, .key_id = "fuzz", .scope = NULL};
    int rc = bundle_verify_signatures(b, &s, err);
    if (rc != 0 && (rc != MB_EINVAL || !err[0]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[BUNDLE_ERROR_MAX];
    bundle *b = (bundle *)1;
    sink gz = {0};

    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    const uint8_t *bytes = data + 1;
    size_t len = size - 1;

    /* the whole input as an answer of OPA's */
    cJSON *expect = cJSON_CreateTrue();
    char *got = NULL;
    bundle_decision_matches((const char *)data, size, expect, &got);
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if ((got != NULL) != cJSON_IsObject(body))
        abort();
    cJSON_Delete(body);
    cJSON_Delete(expect);
    free(got);

    if (!(flags & 1)) {
        gzip(&gz, bytes, len);
        bytes = gz.data;
        len = gz.len;
    }
    int rc = bundle_read(&b, bytes, len, MAX_UNPACKED, err);
    if (rc == 0) {
        if (!b)
            abort();
        check_bundle(b);
        verify(b, flags & 2);
        bundle_free(b);
    } else if (rc != MB_EINVAL || b || !err[0]) {
        abort();
    }
    free(gz.data);
    return 0;
}
