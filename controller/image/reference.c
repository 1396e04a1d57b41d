/*
 * The pure parts of registry.h: the repository reference as docker and
 * Kubernetes read it, one WWW-Authenticate challenge, and the credentials a
 * .dockerconfigjson holds for a registry host (wiped after use).
 */
#include "image/registry.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/secret.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- references ------------------------------------------------------------ */

#define REF_HINT "; write it as host[:port]/path (e.g. ghcr.io/org/app), or a Docker Hub name, without a tag or digest"

static bool alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool path_component_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
        return false;
    while (i < n) {
        if (alnum_lower(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1 < n && s[i + 1] == '_' ? i + 2 : i + 1;
        } else if (s[i] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j >= n || !alnum_lower(s[j]))
            return false;
        i = j;
    }
    return true;
}

/* host[:port]: DNS labels of letters, digits and '-' (not at either end) split by '.', or [IPv6]; a port of digits. */
static bool host_ok(const char *s, size_t n)
{
    size_t end = n, i = 0;
    const char *colon = NULL;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1)
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        end = (size_t)(close - s) + 1;
        if (end < n && s[end] != ':')
            return false;
        colon = end < n ? s + end : NULL;
    } else {
        colon = memchr(s, ':', n);
        end = colon ? (size_t)(colon - s) : n;
        if (end == 0)
            return false;
        while (i < end) {
            size_t j = i;
            while (j < end && s[j] != '.')
                j++;
            if (j == i || !isalnum((unsigned char)s[i]) || !isalnum((unsigned char)s[j - 1]))
                return false;
            for (size_t k = i; k < j; k++)
                if (!isalnum((unsigned char)s[k]) && s[k] != '-')
                    return false;
            i = j + 1;
            if (j < end && i == end)
                return false; /* a trailing '.' */
        }
    }
    if (colon) {
        size_t digits = n - (size_t)(colon - s) - 1;
        if (digits == 0 || digits > 5)
            return false;
        for (size_t k = 1; k <= digits; k++)
            if (!isdigit((unsigned char)colon[k]))
                return false;
    }
    return true;
}

int registry_ref_parse(registry_ref *out, const char *repository, char err[REGISTRY_MESSAGE_MAX])
{
    const char *path = repository, *slash;
    size_t hlen = 0;

    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    if (!repository || !repository[0]) {
        snprintf(err, REGISTRY_MESSAGE_MAX, "spec.image.repository is empty" REF_HINT);
        return MB_EINVAL;
    }
    if (mb_has_control(repository) || strpbrk(repository, " \t")) {
        snprintf(err, REGISTRY_MESSAGE_MAX, "spec.image.repository holds spaces or control characters" REF_HINT);
        return MB_EINVAL;
    }
    if (strchr(repository, '@')) {
        snprintf(err, REGISTRY_MESSAGE_MAX,
                 "spec.image.repository \"%.200s\" holds a digest: the digest goes in spec.image.digest" REF_HINT,
                 repository);
        return MB_EINVAL;
    }
    slash = strchr(repository, '/');
    if (slash) {
        hlen = (size_t)(slash - repository);
        bool is_host = memchr(repository, '.', hlen) || memchr(repository, ':', hlen) ||
                       (hlen == 9 && strncmp(repository, "localhost", 9) == 0) || repository[0] == '[';
        if (is_host) {
            if (!host_ok(repository, hlen) || hlen >= sizeof(out->host)) {
                snprintf(err, REGISTRY_MESSAGE_MAX,
                         "spec.image.repository \"%.200s\" does not start with a valid registry host[:port]" REF_HINT,
                         repository);
                return MB_EINVAL;
            }
            memcpy(out->host, repository, hlen);
            path = slash + 1;
        } else {
            hlen = 0;
        }
    }
    if (hlen == 0 || strcasecmp(out->host, "docker.io") == 0 || strcasecmp(out->host, "index.docker.io") == 0 ||
        strcasecmp(out->host, "registry-1.docker.io") == 0) {
        snprintf(out->host, sizeof(out->host), "registry-1.docker.io");
        out->docker_hub = true;
    }
    /* the path: components split by '/', the last without a ":tag" */
    for (const char *p = path;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (!end && memchr(p, ':', n)) {
            snprintf(err, REGISTRY_MESSAGE_MAX,
                     "spec.image.repository \"%.200s\" holds a tag: the image is named by spec.image.digest" REF_HINT,
                     repository);
            return MB_EINVAL;
        }
        if (!path_component_ok(p, n)) {
            snprintf(err, REGISTRY_MESSAGE_MAX,
                     "spec.image.repository \"%.200s\" has an invalid path component \"%.*s\" (lowercase letters, "
                     "digits, and '.', '_', '__' or '-' between them)" REF_HINT,
                     repository, (int)(n > 100 ? 100 : n), p);
            return MB_EINVAL;
        }
        if (!end)
            break;
        p = end + 1;
    }
    int w = snprintf(out->name, sizeof(out->name), "%s%s", out->docker_hub && !strchr(path, '/') ? "library/" : "",
                     path);
    if (w < 0 || (size_t)w >= sizeof(out->name)) {
        snprintf(err, REGISTRY_MESSAGE_MAX, "spec.image.repository is longer than %zu characters" REF_HINT,
                 sizeof(out->name) - 1);
        return MB_EINVAL;
    }
    return 0;
}

/* ---- WWW-Authenticate ------------------------------------------------------ */

static bool token_char(char c)
{
    return c > ' ' && c < 127 && !strchr("\",;=()<>@:\\/[]?{}", c);
}

int registry_challenge_parse(registry_challenge *out, const char *header)
{
    const char *p = header;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    if (!p)
        return mb_error_set(MB_EINVAL, "no WWW-Authenticate challenge");
    while (*p == ' ' || *p == '\t')
        p++;
    while (token_char(p[n]))
        n++;
    if (n == 0 || n >= sizeof(out->scheme) || (p[n] && p[n] != ' ' && p[n] != '\t'))
        return mb_error_set(MB_EINVAL, "the WWW-Authenticate challenge does not start with a scheme");
    memcpy(out->scheme, p, n);
    p += n;
    for (;;) {
        char key[32], value[1024];
        size_t k = 0, v = 0;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        while (token_char(*p) && k + 1 < sizeof(key))
            key[k++] = *p++;
        key[k] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (k == 0 || *p != '=')
            return mb_error_set(MB_EINVAL, "the WWW-Authenticate challenge has a parameter that is not name=value");
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (v + 1 >= sizeof(value))
                    return mb_error_set(MB_EINVAL, "the WWW-Authenticate parameter %s is too long", key);
                value[v++] = *p;
            }
            if (*p != '"')
                return mb_error_set(MB_EINVAL, "the WWW-Authenticate parameter %s has no closing quote", key);
            p++;
        } else {
            while (*p && *p != ',' && *p != ' ' && *p != '\t') {
                if (v + 1 >= sizeof(value))
                    return mb_error_set(MB_EINVAL, "the WWW-Authenticate parameter %s is too long", key);
                value[v++] = *p++;
            }
        }
        value[v] = '\0';
        char *into = NULL;
        size_t size = 0;
        if (strcasecmp(key, "realm") == 0)
            into = out->realm, size = sizeof(out->realm);
        else if (strcasecmp(key, "service") == 0)
            into = out->service, size = sizeof(out->service);
        else if (strcasecmp(key, "scope") == 0)
            into = out->scope, size = sizeof(out->scope);
        if (into) {
            if (v >= size)
                return mb_error_set(MB_EINVAL, "the WWW-Authenticate parameter %s is too long", key);
            memcpy(into, value, v + 1);
        }
    }
    return 0;
}

/* ---- docker config ----------------------------------------------------------- */

/* Whether an auths key names host: "host", "https://host", "http://host/v1/", ... */
static bool key_names(const char *key, const char *host)
{
    size_t n;
    if (strncasecmp(key, "https://", 8) == 0)
        key += 8;
    else if (strncasecmp(key, "http://", 7) == 0)
        key += 7;
    n = strcspn(key, "/");
    return n == strlen(host) && strncasecmp(key, host, n) == 0;
}

static bool key_matches(const char *key, const registry_ref *ref)
{
    if (ref->docker_hub)
        return key_names(key, "index.docker.io") || key_names(key, "docker.io") ||
               key_names(key, "registry-1.docker.io");
    return key_names(key, ref->host);
}

int registry_docker_auth(char **user, char **password, const char *docker_config, const registry_ref *ref,
                         char err[REGISTRY_MESSAGE_MAX])
{
    int rc = MB_ENOTFOUND;
    cJSON *doc = NULL;
    const cJSON *auths, *entry = NULL, *e;
    char *decoded = NULL;
    size_t dlen = 0;

    *user = *password = NULL;
    err[0] = '\0';
    if (!docker_config)
        return MB_ENOTFOUND;
    if (!(doc = cJSON_Parse(docker_config)) || !cJSON_IsObject(doc)) {
        snprintf(err, REGISTRY_MESSAGE_MAX,
                 "the registry Secret's .dockerconfigjson is not a JSON object (spec.image.verify.registrySecretRef "
                 "must name a kubernetes.io/dockerconfigjson Secret)");
        rc = MB_EINVAL;
        goto done;
    }
    auths = cJSON_GetObjectItemCaseSensitive(doc, "auths");
    if (!cJSON_IsObject(auths)) {
        snprintf(err, REGISTRY_MESSAGE_MAX,
                 "the registry Secret's .dockerconfigjson has no \"auths\" object (spec.image.verify.registrySecretRef "
                 "must name a kubernetes.io/dockerconfigjson Secret)");
        rc = MB_EINVAL;
        goto done;
    }
    cJSON_ArrayForEach(e, auths)
        if (e->string && key_matches(e->string, ref)) {
            entry = e;
            break;
        }
    if (!entry)
        goto done;
    const char *auth = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "auth"));
    const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "username"));
    const char *pw = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "password"));
    if (auth && auth[0]) {
        char *colon;
        rc = mb_base64_decode(&decoded, &dlen, auth);
        if (rc == MB_ENOMEM)
            goto done;
        if (rc < 0 || !(colon = memchr(decoded, ':', dlen))) {
            snprintf(err, REGISTRY_MESSAGE_MAX,
                     "the registry Secret's .dockerconfigjson auths[\"%.200s\"].auth is not base64 of "
                     "\"username:password\"",
                     entry->string);
            rc = MB_EINVAL;
            goto done;
        }
        *colon = '\0';
        if (!(*user = strdup(decoded)) || !(*password = strdup(colon + 1))) {
            rc = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        rc = 0;
    } else if (u && pw) {
        if (!(*user = strdup(u)) || !(*password = strdup(pw))) {
            rc = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        rc = 0;
    } else {
        snprintf(err, REGISTRY_MESSAGE_MAX,
                 "the registry Secret's .dockerconfigjson auths[\"%.200s\"] has neither \"auth\" nor \"username\" and "
                 "\"password\"",
                 entry->string);
        rc = MB_EINVAL;
    }
done:
    if (rc < 0) {
        mb_secret_free(*user);
        mb_secret_free(*password);
        *user = *password = NULL;
    }
    mb_secret_free_len(decoded, dlen);
    if (doc) {
        /* the parsed copies of the credentials are wiped too */
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "auths");
        cJSON_ArrayForEach(e, a) {
            cJSON *f;
            cJSON_ArrayForEach(f, e)
                if (cJSON_IsString(f) && f->valuestring)
                    OPENSSL_cleanse(f->valuestring, strlen(f->valuestring));
        }
        cJSON_Delete(doc);
    }
    return rc;
}
