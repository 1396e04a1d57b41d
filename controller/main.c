/*
 * membrane: entry point. Parses the command line (cli/options.h) and runs the
 * controllers or a subcommand. Exit codes: 0 clean shutdown, 1 runtime
 * failure, 2 bad flags or configuration.
 */
#include "api/resources.h"
#include "audit/verify.h"
#include "cli/options.h"
#include "kube/client.h"
#include "kube/config.h"
#include "net/transfer.h"
#include "dataset/controller.h"
#include "policy/controller.h"
#include "release/controller.h"
#include "runtime/httpserver.h"
#include "runtime/factory.h"
#include "runtime/leader.h"
#include "runtime/manager.h"
#include "runtime/metrics_families.h"
#include "runtime/events.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <archive.h>
#include <curl/curl.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <yaml.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SYNC_TIMEOUT_MS 60000L
#define TRIM_INTERVAL_S 30

/* Leadership: start the controllers on winning it; on losing it, stop reconciling at once by exiting. */
static void started_leading(void *ctx)
{
    log_info("became the leader: starting the controllers");
    if (manager_start(ctx) < 0) {
        log_error("cannot start the controllers: %s", mb_error_last());
        _exit(1);
    }
}

static void stopped_leading(void *ctx)
{
    (void)ctx;
    log_error("lost the leader Lease: exiting so that no reconcile runs without it");
    _exit(1);
}
#define DRAIN_TIMEOUT_MS 10000L

static int run(const cli_options *opts)
{
    kube_config *cfg = NULL;
    kube_client *client = NULL;
    event_recorder *events = NULL;
    net_loop *net = NULL;
    informer_factory *factory = NULL;
    manager *mgr = NULL;
    httpserver *http = NULL;
    leader_elector *elector = NULL;
    sigset_t sigs;
    int sig = 0, rc = 1;

    /* SIGTERM and SIGINT are taken by sigwait below, in this thread only */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (kube_config_load(&cfg, opts->kubeconfig, opts->context) < 0) {
        log_error("configuration: %s", mb_error_last());
        return 2;
    }
    kube_client_opts co = {.on_answer = metrics_api_request_inc};
    if (kube_client_new(&client, cfg, &co) < 0) {
        log_error("client: %s", mb_error_last());
        return 1;
    }
    if (event_recorder_new(&events, client, NULL) < 0)
        goto done;
    /* one transfer loop serves every outbound HTTP call that is not the Kubernetes API */
    if (net_loop_new(&net, &(net_loop_opts){.on_finish = metrics_transfer_observe}) < 0)
        goto done;
    informer_factory_opts fo = {.client = client,
                                .namespace = opts->namespace,
                                .label_selector = opts->watch_label_selector,
                                .selector_group = API_GROUP};
    manager_opts mo = {.workers = opts->workers, .sync_timeout_ms = SYNC_TIMEOUT_MS};
    if (informer_factory_new(&factory, &fo) < 0 || (mo.factory = factory, manager_new(&mgr, &mo)) < 0)
        goto done;
    /* the controllers: one registration each */
    release_controller_opts ro = {.client = client,
                                  .events = events,
                                  .net = net,
                                  .allow_after_namespaces = opts->allow_after_namespaces,
                                  .enable_probe = opts->enable_probe};
    if (release_controller_register(mgr, &ro) < 0)
        goto done;
    policy_controller_opts po = {.client = client, .events = events, .net = net};
    if (policy_controller_register(mgr, &po) < 0)
        goto done;
    dataset_controller_opts dso = {.client = client, .events = events, .net = net};
    if (dataset_controller_register(mgr, &dso) < 0)
        goto done;
    httpserver_opts ho = {.metrics_addr = opts->metrics_addr,
                          .health_addr = opts->health_addr,
                          .alive = manager_alive,
                          .alive_ctx = mgr,
                          .ready = manager_ready,
                          .ready_ctx = mgr};
    if (httpserver_start(&http, &ho) < 0) {
        rc = mb_error_last_code() == MB_EINVAL ? 2 : 1;
        goto done;
    }
    if (opts->leader_elect) {
        const char *ns = opts->leader_election_namespace         ? opts->leader_election_namespace
                         : kube_client_config(client)->namespace ? kube_client_config(client)->namespace
                                                                 : "default";
        char lease[LEADER_LEASE_NAME_MAX];
        leader_lease_name(lease, opts->watch_label_selector);
        leader_elector_opts lo = {.client = client,
                                  .namespace = ns,
                                  .name = lease,
                                  .on_started_leading = started_leading,
                                  .on_stopped_leading = stopped_leading,
                                  .ctx = mgr};
        if (leader_elector_new(&elector, &lo) < 0 || leader_elector_start(elector) < 0)
            goto done;
        log_info("membrane %s is running against %s as %s, waiting for the Lease %s/%s", MEMBRANE_VERSION,
                 kube_client_config(client)->server, leader_elector_identity(elector), ns, lease);
    } else {
        metrics_leader_set(true); /* alone, it acts as the leader */
        if (manager_start(mgr) < 0)
            goto done;
        log_info("membrane %s is running against %s (namespace %s, label selector %s, %d workers per kind)",
                 MEMBRANE_VERSION, kube_client_config(client)->server, opts->namespace ? opts->namespace : "all",
                 opts->watch_label_selector ? opts->watch_label_selector : "none", opts->workers);
    }

    /* the heap freed after a burst (the first lists, a wave of reconciles) goes back to the system */
    struct timespec every = {.tv_sec = TRIM_INTERVAL_S};
    do
        malloc_trim(0);
    while ((sig = sigtimedwait(&sigs, NULL, &every)) < 0);
    log_info("received %s: finishing in-flight work", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    manager_stop(mgr, DRAIN_TIMEOUT_MS);
    leader_elector_stop(elector); /* after the work that needed leadership: releases the Lease */
    event_recorder_flush(events, 2000);
    rc = 0;
done:
    if (rc != 0)
        log_error("%s", mb_error_last());
    leader_elector_free(elector);
    httpserver_free(http);
    manager_free(mgr); /* stops the informers that feed them, then frees the controllers and their loops */
    informer_factory_free(factory);
    net_loop_free(net); /* after the controllers that start transfers on it */
    event_recorder_free(events);
    kube_client_free(client);
    return rc;
}

#ifndef MEMBRANE_STATIC_SOURCES
#define MEMBRANE_STATIC_SOURCES ""
#endif

/* `membrane version`: the versions the linked libraries report themselves
 * (for a static build, what is inside the binary) and, for a static build, the
 * Debian source packages they were built from (hack/static.sh). */
static void print_version(void)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    const char *archive = archive_version_details(); /* "libarchive 3.6.2 zlib/1.2.13 ..." */

    if (strncmp(archive, "libarchive ", strlen("libarchive ")) == 0)
        archive += strlen("libarchive ");

    printf("membrane %s\ngit: %s\nbuilt with: %s\n", MEMBRANE_VERSION, MEMBRANE_GIT[0] ? MEMBRANE_GIT : "unknown",
           __VERSION__);
    printf("linked: %s\n", MEMBRANE_STATIC_SOURCES[0] ? "static" : "dynamic");
    printf("libraries: libcurl %s (%s), %s, libarchive %s, cJSON %s, libyaml %s, libwebsockets %s\n", cv->version,
           cv->ssl_version ? cv->ssl_version : "no TLS", OpenSSL_version(OPENSSL_VERSION), archive, cJSON_Version(),
           yaml_get_version_string(), lws_get_library_version());
    printf("libcurl protocols:");
    for (const char *const *p = cv->protocols; p && *p; p++)
        printf(" %s", *p);
    printf("\n");
    if (MEMBRANE_STATIC_SOURCES[0])
        printf("debian sources: %s\n", MEMBRANE_STATIC_SOURCES);
}

int main(int argc, char **argv)
{
    cli_options opts;
    int rc;

    if (cli_options_parse(&opts, argc, argv) < 0) {
        fprintf(stderr, "membrane: %s\n", mb_error_last());
        return 2;
    }
    switch (opts.command) {
    case CLI_HELP: fputs(cli_usage(), stdout); return 0;
    case CLI_VERSION: print_version(); return 0;
    case CLI_RECEIPT_VERIFY: return audit_verify_files(opts.receipt_files, (size_t)opts.n_receipt_files, stdout);
    case CLI_RUN: break;
    }
    mb_log_setup(opts.log_format, opts.log_level, NULL);
    /*
     * One malloc arena for every thread (each keeps its own small cache of
     * chunks), and fixed thresholds: a block of 128 KiB or more (a list page,
     * a large answer) is mapped and unmapped on its own instead of raising
     * the threshold and staying in the heap, and the top of the heap goes
     * back past 128 KiB free. With 1,000 releases settled: 260 kB less
     * resident than two arenas and glibc's adaptive thresholds.
     */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = run(&opts);
    curl_global_cleanup();
    metrics_default_free();
    return rc;
}
