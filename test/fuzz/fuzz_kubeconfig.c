/*
 * libFuzzer target for the kubeconfig loader: the input is a kubeconfig (or,
 * cut at lines "#---", up to three that are merged as $KUBECONFIG merges
 * them), written to files in a private temporary directory and loaded with
 * its current-context. The directory also holds the CA, client certificate,
 * key and token of test/fixtures/kubeconfig, so that the relative paths of
 * the seeds resolve. When a configuration loads without an exec plugin, its
 * credentials are taken too (that re-reads a tokenFile); plugins are never
 * run. Inputs whose file fields (certificate-authority, client-certificate,
 * client-key, tokenFile) name an absolute path or go up with ".." are skipped,
 * so the target reads nothing outside its directory (no device, FIFO or /proc
 * file that would block or change) and writes only there.
 */
#include "kube/config.h"
#include "util/error.h"
#include "util/log.h"
#include "util/yaml.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 3
#define SEPARATOR "\n#---\n"

static char dir[256];
static char paths[MAX_FILES][272];

static void dir_remove(void)
{
    static const char *const names[] = {"config0",
                                        "config1",
                                        "config2",
                                        "pki/ca.crt",
                                        "pki/client.crt",
                                        "pki/client.key",
                                        "pki/other.key",
                                        "tokens/static-token",
                                        "pki",
                                        "tokens"};
    char path[320];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

static int file_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;
    if (fd < 0)
        return -1;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

/* Copies test/fixtures/kubeconfig/<rel> to <dir>/<rel>; a missing fixture only costs coverage. */
static void fixture_copy(const char *rel)
{
    char src[512], dst[320], buf[8192];
    size_t n;
    FILE *f;

    snprintf(src, sizeof(src), "%s/kubeconfig/%s", FIXTURES_DIR, rel);
    snprintf(dst, sizeof(dst), "%s/%s", dir, rel);
    if (!(f = fopen(src, "rb")))
        return;
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    file_write(dst, buf, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    char sub[320];

    (void)argc;
    (void)argv;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_ERROR, NULL);
    snprintf(dir, sizeof(dir), "%s/fuzz-kubeconfig-XXXXXX", tmp && *tmp && strlen(tmp) < 200 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_kubeconfig: mkdtemp");
        exit(1);
    }
    atexit(dir_remove);
    for (int i = 0; i < MAX_FILES; i++)
        snprintf(paths[i], sizeof(paths[i]), "%s/config%d", dir, i);
    snprintf(sub, sizeof(sub), "%s/pki", dir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/tokens", dir);
    mkdir(sub, 0700);
    fixture_copy("pki/ca.crt");
    fixture_copy("pki/client.crt");
    fixture_copy("pki/client.key");
    fixture_copy("pki/other.key");
    fixture_copy("tokens/static-token");
    return 0;
}

/* Whether a field the loader reads a file from names one outside the directory. */
static bool reaches_out(const cJSON *v)
{
    static const char *const file_keys[] = {"certificate-authority", "client-certificate", "client-key", "tokenFile"};

    for (const cJSON *c = v ? v->child : NULL; c; c = c->next) {
        if (c->string && cJSON_IsString(c)) {
            for (size_t k = 0; k < sizeof(file_keys) / sizeof(file_keys[0]); k++)
                if (strcmp(c->string, file_keys[k]) == 0 && (c->valuestring[0] == '/' || strstr(c->valuestring, "..")))
                    return true;
        }
        if (reaches_out(c))
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *end = text + size;
    char list[MAX_FILES * 273];
    kube_config *cfg = NULL;
    kube_credentials cred;
    int files = 0;

    /* cut into files; every one is checked for paths that leave the directory before any is loaded */
    list[0] = '\0';
    while (files < MAX_FILES) {
        const char *sep = files < MAX_FILES - 1 ? memmem(text, (size_t)(end - text), SEPARATOR, strlen(SEPARATOR))
                                                : NULL;
        size_t len = sep ? (size_t)(sep - text) + 1 : (size_t)(end - text);
        cJSON *doc = NULL;
        bool out = false;

        if (mb_yaml_parse(&doc, text, len, NULL) == 0)
            out = reaches_out(doc);
        cJSON_Delete(doc);
        if (out)
            return -1;
        if (file_write(paths[files], text, len) < 0)
            abort();
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", files ? ":" : "", paths[files]);
        files++;
        if (!sep)
            break;
        text = sep + strlen(SEPARATOR);
    }

    if (files == 1) {
        if (kube_config_load(&cfg, paths[0], NULL) < 0 && mb_error_last()[0] == '\0')
            abort();
    } else {
        const kube_config_opts opts = {NULL, NULL, NULL};
        setenv("KUBECONFIG", list, 1);
        if (kube_config_load_opts(&cfg, &opts) < 0 && mb_error_last()[0] == '\0')
            abort();
    }
    if (cfg) {
        if (!cfg->server || (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0))
            abort();
        if (!cfg->exec) {
            if (kube_config_credentials(&cred, cfg) == 0 && cred.cert.len && !cred.key.len)
                abort();
            kube_credentials_clear(&cred);
        }
    }
    kube_config_free(cfg);
    return 0;
}
