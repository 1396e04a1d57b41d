/*
 * libFuzzer target for what the OCI registry client reads from others: the
 * WWW-Authenticate challenge a registry answers (registry_challenge_parse),
 * the .dockerconfigjson text of a Secret (registry_docker_auth, for a Docker
 * Hub name and for a host:port), and spec.image.repository
 * (registry_ref_parse). The first byte picks which (0: challenge, 1: docker
 * config, 2: repository, mod 3); the rest is the text (up to its first NUL).
 * Beyond no crash, leak or undefined behaviour: a parsed reference has a
 * host and a lowercase name, and a Docker Hub one starts with a namespace; a
 * challenge has a scheme; credentials come as both user and password or not
 * at all.
 */
#include "image/registry.h"
#include "util/error.h"
#include "util/secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[REGISTRY_MESSAGE_MAX], *text;
    if (size < 1)
        return 0;
    if (!(text = strndup((const char *)data + 1, size - 1)))
        return 0;
    switch (data[0] % 3) {
    case 0: {
        registry_challenge ch;
        if (registry_challenge_parse(&ch, text) == 0 && !ch.scheme[0])
            abort();
        break;
    }
    case 1: {
        static const char *repos[] = {"nginx", "127.0.0.1:5000/kfm/api", "ghcr.io/kfm/api"};
        for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++) {
            registry_ref ref;
            char *user = NULL, *password = NULL;
            if (registry_ref_parse(&ref, repos[i], err) != 0)
                abort();
            int rc = registry_docker_auth(&user, &password, text, &ref, err);
            if ((rc == 0) != (user && password) || (rc < 0 && (user || password)))
                abort();
            mb_secret_free(user);
            mb_secret_free(password);
        }
        break;
    }
    default: {
        registry_ref ref;
        if (registry_ref_parse(&ref, text, err) == 0) {
            if (!ref.host[0] || !ref.name[0])
                abort();
            for (const char *p = ref.name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    abort();
            if (ref.docker_hub && !strchr(ref.name, '/'))
                abort();
        } else if (!strstr(err, "spec.image.repository")) {
            abort();
        }
        break;
    }
    }
    free(text);
    return 0;
}
