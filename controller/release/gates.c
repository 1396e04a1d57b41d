/*
 * The gates of a GovernedAPIRelease, checked in order before the Deployment
 * is touched: the spec is valid, a change record is linked, the target
 * Deployment and container exist and no other release claims them, the
 * referenced PolicyBundle is Ready with its pinned digest verified, the
 * releases named by spec.after (earlier environments) succeeded with this
 * digest and their receipt chains verify, and there is a rollback target; with spec.image.verify, the new
 * digest and that target carry a cosign signature (and the attestations asked for) by the configured key,
 * as the controller's image verifier found (obs->images). The choice of that target (spec.rollbackTarget,
 * the one already recorded, or what the Deployment runs) is here too. Every
 * gate fails closed: what it cannot see blocks, with a message that says what
 * to fix.
 */
#include "release/decide_private.h"
#include "util/text.h"
#include "audit/verify.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/slo.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool block(release_gate_block *b, const char *reason, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool block(release_gate_block *b, const char *reason, bool transient, const char *fmt, ...)
{
    va_list ap;
    b->reason = reason;
    b->transient = transient;
    va_start(ap, fmt);
    vsnprintf(b->message, sizeof(b->message), fmt, ap);
    va_end(ap);
    return false;
}

/* Out of memory: no gate blocks, the decision fails (and is retried with backoff). */
static bool oom(release_gate_block *b)
{
    b->oom = true;
    return false;
}

static const char *const environments[] = {"dev", "staging", "prod"};

int release_environment_rank(const char *env)
{
    for (int i = 0; env && i < 3; i++)
        if (strcmp(env, environments[i]) == 0)
            return i;
    return -1;
}

static bool spec_valid(const release_ctx *c, release_gate_block *b)
{
    const char *env = json_str(c->spec, "environment", NULL);
    bool env_ok = false;
    for (size_t i = 0; env && i < 3; i++)
        env_ok = env_ok || strcmp(env, environments[i]) == 0;
    if (!env_ok)
        return block(b, "InvalidSpec", false, "spec.environment \"%s\" is not one of dev, staging, prod; fix the spec",
                     env ? env : "");
    if (!c->deployment || !*c->deployment)
        return block(b, "InvalidSpec", false, "spec.target.deployment is empty; name the Deployment to roll out");
    if (!c->container || !*c->container)
        return block(b, "InvalidSpec", false,
                     "spec.target.container is empty; name the container in the Deployment's pod template");
    if (!c->repository || !*c->repository || strchr(c->repository, '@'))
        return block(b, "InvalidSpec", false,
                     "spec.image.repository \"%s\" must be an image repository without a tag or digest",
                     c->repository ? c->repository : "");
    if (!mb_sha256_digest_valid(c->digest))
        return block(b, "InvalidSpec", false,
                     "spec.image.digest \"%s\" is not a sha256 digest (sha256:<64 lowercase hex>); pin the image by "
                     "digest, not by tag",
                     c->digest ? c->digest : "");
    const char *rt = json_str(c->spec, "rollbackTarget", "digest", NULL);
    if (rt && !mb_sha256_digest_valid(rt))
        return block(b, "InvalidSpec", false, "spec.rollbackTarget.digest \"%s\" is not a sha256 digest", rt);
    if (rt && strcmp(rt, c->digest) == 0)
        return block(b, "InvalidSpec", false,
                     "spec.rollbackTarget.digest equals spec.image.digest; a release cannot roll back to itself");
    /* the slo check must be able to run before anything is rolled out that it would judge */
    const cJSON *slo = json_get(c->spec, "verification", "slo", NULL);
    char why[sizeof(b->message)];
    if (slo && !cJSON_IsNull(slo) && !slo_spec_valid(why, sizeof(why), slo))
        return block(b, "InvalidSpec", false, "%s", why);
    return true;
}

/*
 * The bundle gate: the PolicyBundle has looked at its current spec
 * (status.observedGeneration == metadata.generation), is Ready=True, and
 * verified exactly the digest its spec pins (status.verifiedDigest non-empty
 * and equal to spec.source.digest). Otherwise false, with what is missing or
 * different in why.
 */
static bool bundle_ready(const cJSON *pb, char *why, size_t len)
{
    const cJSON *cd, *ready = NULL;
    long long gen = json_int(-1, pb, "metadata", "generation", NULL);
    long long og = json_int(-2, pb, "status", "observedGeneration", NULL);
    const char *verified = json_str(pb, "status", "verifiedDigest", NULL);
    const char *pinned = json_str(pb, "spec", "source", "digest", NULL);
    cJSON_ArrayForEach(cd, json_get(pb, "status", "conditions", NULL)) {
        const char *type = json_str(cd, "type", NULL);
        if (type && strcmp(type, "Ready") == 0)
            ready = cd;
    }
    const char *rs = json_str(ready, "status", NULL);
    if (og != gen) {
        if (og < 0)
            snprintf(why, len,
                     "its status.observedGeneration is not set (generation %lld): the bundle has not been looked at "
                     "yet",
                     gen);
        else
            snprintf(why, len,
                     "its status.observedGeneration %lld is not its generation %lld: the status describes an older "
                     "spec",
                     og, gen);
        return false;
    }
    if (!rs || strcmp(rs, "True") != 0 || json_int(og, ready, "observedGeneration", NULL) != gen) {
        snprintf(why, len, "its Ready condition is %s for generation %lld (%s)", rs ? rs : "absent", gen,
                 json_str(ready, "reason", NULL) ? json_str(ready, "reason", NULL) : "no reason");
        return false;
    }
    if (!pinned || !*pinned) {
        snprintf(why, len,
                 "its spec.source.digest is empty, so there is no pinned digest to compare status.verifiedDigest with");
        return false;
    }
    if (!verified || !*verified) {
        snprintf(why, len, "its status.verifiedDigest is empty: no digest has been verified for spec.source.digest %s",
                 pinned);
        return false;
    }
    if (strcmp(verified, pinned) != 0) {
        snprintf(why, len,
                 "its status.verifiedDigest %s differs from spec.source.digest %s: the verified bundle is not the "
                 "pinned one",
                 verified, pinned);
        return false;
    }
    return true;
}

/* True when namespace ns is one of the comma-separated list (NULL: every namespace is). */
static bool namespace_allowed(const char *list, const char *ns)
{
    size_t n = strlen(ns);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, ns, n) == 0)
            return true;
        p = comma ? comma + 1 : p + len;
    }
    return !list;
}

/* True for an outcome or phase that ends a generation: nothing more happens to it. */
static bool phase_ended(const char *phase)
{
    return phase && (strcmp(phase, PHASE_SUCCEEDED) == 0 || strcmp(phase, PHASE_ROLLED_BACK) == 0 ||
                     strcmp(phase, PHASE_FAILED) == 0 || strcmp(phase, PHASE_SUSPENDED) == 0);
}

/*
 * True when the upstream release is working on digest now: its spec names it
 * and its current generation has not ended (not looked at yet, or a phase
 * before Succeeded, RolledBack or Failed) nor stalled (held at a gate of its
 * own until a human acts). Its outcome will be a new entry.
 */
static bool upstream_in_flight(const cJSON *up, const char *digest, const char **phase)
{
    const char *d = json_str(up, "spec", "image", "digest", NULL);
    long long gen = json_int(-1, up, "metadata", "generation", NULL);
    long long og = json_int(-2, up, "status", "observedGeneration", NULL);
    const cJSON *cd;
    *phase = json_str(up, "status", "phase", NULL);
    if (!d || strcmp(d, digest) != 0)
        return false;
    if (og != gen)
        return true;
    cJSON_ArrayForEach(cd, json_get(up, "status", "conditions", NULL)) {
        const char *type = json_str(cd, "type", NULL), *status = json_str(cd, "status", NULL);
        if (type && status && strcmp(type, "Stalled") == 0 && strcmp(status, "True") == 0)
            return false;
    }
    return !phase_ended(*phase);
}

/*
 * The environment-order gate: every spec.after entry names a
 * GovernedAPIRelease, in a namespace --allow-after-namespaces allows, of an
 * earlier environment, whose receipt chain verifies, recomputed here
 * (audit/verify.h), not trusted, and whose last status.history entry for
 * this digest ended Succeeded. That entry's auditRef goes into *promoted with
 * the upstream's namespace and name. An upstream not found, without an entry
 * for this digest yet, or still releasing it, is waited for (transient: the
 * release is requeued when the upstream changes); a wrong order, a chain that
 * does not verify, or a digest whose last outcome there is RolledBack or
 * Failed needs a human (Stalled; a later Succeeded entry there still requeues
 * and opens the gate).
 */
static bool order_gate(const release_ctx *c, release_gate_block *b, cJSON **promoted)
{
    const cJSON *after = json_get(c->spec, "after", NULL), *a;
    const char *env = json_str(c->spec, "environment", NULL);
    int rank = release_environment_rank(env);
    size_t i = 0;

    *promoted = NULL;
    if (!after)
        return true;
    if (!cJSON_IsArray(after))
        return block(b, "InvalidSpec", false, "spec.after is not a list; list {namespace, name} entries");
    if (!(*promoted = cJSON_CreateArray()))
        return oom(b);
    cJSON_ArrayForEach(a, after) {
        const char *ns = json_str(a, "namespace", NULL), *name = json_str(a, "name", NULL);
        const cJSON *up = i < c->obs->n_upstream ? c->obs->upstream[i] : NULL;
        size_t at = i++;
        if (!ns || !*ns || !name || !*name)
            return block(b, "InvalidSpec", false, "spec.after[%zu] needs a namespace and a name", at);
        if (!namespace_allowed(c->obs->allow_after_namespaces, ns))
            return block(b, "NotPromoted", false,
                         "spec.after[%zu] names GovernedAPIRelease %s/%s, but namespace %s is not one the operator "
                         "trusts for spec.after (--allow-after-namespaces %s); name a release in one of those "
                         "namespaces, or add %s to the flag",
                         at, ns, name, ns, c->obs->allow_after_namespaces, ns);
        if (!up)
            return block(b, "NotPromoted", true,
                         "spec.after[%zu]: GovernedAPIRelease %s/%s is not found (or not watched by this operator); "
                         "%s must succeed there before this %s release",
                         at, ns, name, c->digest, env);
        const char *up_env = json_str(up, "spec", "environment", NULL);
        int up_rank = release_environment_rank(up_env);
        if (up_rank < 0 || up_rank >= rank)
            return block(b, "NotPromoted", false,
                         "spec.after[%zu]: GovernedAPIRelease %s/%s is environment %s, not earlier than %s (dev < "
                         "staging < prod); name a release of an earlier environment",
                         at, ns, name, up_env ? up_env : "(none)", env);
        /* nothing in a history whose chain does not verify can be trusted, not even a failure */
        audit_report rep = {0};
        int err = audit_verify_object(&rep, up);
        const char *why = NULL;
        for (size_t k = 0; k < rep.count && !why; k++)
            if (rep.findings[k].kind == AUDIT_FINDING_BREAK || rep.findings[k].kind == AUDIT_FINDING_ERROR)
                why = rep.findings[k].text;
        if (err < 0 || rep.breaks || rep.errors) {
            if (err == MB_ENOMEM) {
                audit_report_free(&rep);
                return oom(b);
            }
            block(b, "NotPromoted", false,
                  "spec.after[%zu]: the receipt chain of GovernedAPIRelease %s/%s does not verify (%s); its history "
                  "cannot be trusted: look at it with membrane receipt verify",
                  at, ns, name, why ? why : mb_error_last());
            audit_report_free(&rep);
            return false;
        }
        audit_report_free(&rep);
        const cJSON *e, *last = NULL, *history = json_get(up, "status", "history", NULL);
        int last_at = -1, k = 0;
        cJSON_ArrayForEach(e, history) {
            const char *d = json_str(e, "digest", NULL);
            if (d && strcmp(d, c->digest) == 0)
                last = e, last_at = k; /* the newest one: history is oldest first */
            k++;
        }
        const char *outcome = json_str(last, "outcome", NULL), *phase = NULL;
        bool succeeded = outcome && strcmp(outcome, PHASE_SUCCEEDED) == 0;
        if (!succeeded && upstream_in_flight(up, c->digest, &phase))
            return block(b, "NotPromoted", true,
                         "spec.after[%zu]: GovernedAPIRelease %s/%s is still releasing %s (phase %s of generation "
                         "%lld); this release waits and proceeds when it succeeds there",
                         at, ns, name, c->digest, phase ? phase : "not set yet",
                         json_int(-1, up, "metadata", "generation", NULL));
        if (!last)
            return block(b, "NotPromoted", true,
                         "spec.after[%zu]: GovernedAPIRelease %s/%s has no Succeeded entry for %s in its "
                         "status.history; release this digest there first",
                         at, ns, name, c->digest);
        if (!succeeded)
            return block(b, "NotPromoted", false,
                         "spec.after[%zu]: GovernedAPIRelease %s/%s: its last entry for %s (status.history[%d]) "
                         "has outcome %s, so this digest is not promoted; release a fixed digest there, then name "
                         "that digest here",
                         at, ns, name, c->digest, last_at, outcome ? outcome : "(none)");
        const char *sealed_env = json_str(last, "environment", NULL);
        if (sealed_env && (release_environment_rank(sealed_env) < 0 || release_environment_rank(sealed_env) >= rank))
            return block(b, "NotPromoted", false,
                         "spec.after[%zu]: the Succeeded entry of %s/%s for %s was sealed for environment %s, not "
                         "earlier than %s",
                         at, ns, name, c->digest, sealed_env, env);
        const char *ref = json_str(last, "auditRef", NULL);
        cJSON *p = cJSON_CreateObject();
        if (p && !cJSON_AddItemToArray(*promoted, p)) {
            cJSON_Delete(p);
            p = NULL;
        }
        if (!p || json_set_str(p, "namespace", ns) < 0 || json_set_str(p, "name", name) < 0 ||
            json_set_str(p, "auditRef", ref ? ref : "") < 0)
            return oom(b);
    }
    return true;
}

/* True when the release recorded in the status (its releaseID) ended Succeeded: its digest was verified. */
static bool last_release_succeeded(const release_ctx *c)
{
    const char *old_rid = release_old_str(c, "releaseID");
    const cJSON *h = c->old ? json_get(c->old, "history", NULL) : NULL;
    const cJSON *last = cJSON_GetArrayItem(h, cJSON_GetArraySize(h) - 1);
    const char *rid = json_str(last, "releaseID", NULL), *outcome = json_str(last, "outcome", NULL);
    return old_rid && rid && outcome && strcmp(rid, old_rid) == 0 && strcmp(outcome, PHASE_SUCCEEDED) == 0;
}

/* True when status.history holds an entry of releaseID rid that ended Succeeded. */
static bool release_succeeded(const release_ctx *c, const char *rid)
{
    const cJSON *e, *history = c->old ? json_get(c->old, "history", NULL) : NULL;
    cJSON_ArrayForEach(e, history) {
        const char *r = json_str(e, "releaseID", NULL), *outcome = json_str(e, "outcome", NULL);
        if (r && outcome && strcmp(r, rid) == 0 && strcmp(outcome, PHASE_SUCCEEDED) == 0)
            return true;
    }
    return false;
}

/*
 * The rollback target this release would record now, in out ("" if none),
 * and the full image reference a rollback patches the container to, in
 * image. The Deployment's image becomes the target only when no release is
 * recorded or the last one succeeded: after a generation that was cut short,
 * failed or rolled back, the Deployment may run a digest nobody verified, and
 * the target recorded before that generation touched it still stands, with
 * its image. The image is the container's image string as it ran (its own
 * repository, which spec.image.repository may since have changed), or
 * <spec.image.repository>@<digest> for spec.rollbackTarget.digest.
 */
static void rollback_target(const release_ctx *c, char out[72], char image[512])
{
    const char *rt = json_str(c->spec, "rollbackTarget", "digest", NULL);
    const char *recorded = release_old_str(c, "rollbackTarget");
    const char *recorded_image = release_old_str(c, "rollbackImage");
    const char *old_rid = release_old_str(c, "releaseID");
    const char *ann_rid = release_deployment_annotation(c, RELEASE_ROLLBACK_FOR_ANNOTATION);
    const char *ann_image = release_deployment_annotation(c, RELEASE_ROLLBACK_IMAGE_ANNOTATION);
    bool ann_valid = ann_rid && ann_image && mb_sha256_digest_valid(release_digest_of(ann_image)) &&
                     strlen(ann_image) < 512;
    out[0] = '\0';
    image[0] = '\0';
    const char *owner = release_deployment_annotation(c, RELEASE_OWNER_ANNOTATION);
    bool ours = owner && strcmp(owner, c->owner) == 0;
    if (ann_valid && ours &&
        (strcmp(ann_rid, c->rid) == 0 ||
         (!rt && (!old_rid || strcmp(ann_rid, old_rid) != 0) && !release_succeeded(c, ann_rid)))) {
        /*
         * The record the rollout patch of this very release made (its status
         * write did not follow), or of a release the status never heard of
         * (cut short between its patch and its status write): what it rolled
         * out was never verified, what it recorded stands.
         */
        snprintf(out, 72, "%s", release_digest_of(ann_image));
        snprintf(image, 512, "%s", ann_image);
    } else if (rt) {
        snprintf(out, 72, "%s", rt);
        snprintf(image, 512, "%s@%s", c->repository ? c->repository : "", rt);
    } else if (old_rid && recorded && *recorded && (strcmp(old_rid, c->rid) == 0 || !last_release_succeeded(c))) {
        /* already recorded for this very release, or for one that never verified what it left running */
        snprintf(out, 72, "%s", recorded);
        if (recorded_image && release_digest_of(recorded_image) &&
            strcmp(release_digest_of(recorded_image), recorded) == 0)
            snprintf(image, 512, "%s", recorded_image);
        else /* recorded before rollbackImage was: the repository is all there is */
            snprintf(image, 512, "%s@%s", c->repository ? c->repository : "", recorded);
    } else {
        const char *running = release_deployment_image(c);
        const char *d = release_digest_of(running);
        if (mb_sha256_digest_valid(d) && strlen(running) < 512) {
            snprintf(out, 72, "%s", d);
            snprintf(image, 512, "%s", running);
        }
    }
}

/* The verdict on digest among the ones the controller looked up, or NULL. */
static const release_image_verdict *image_verdict(const release_ctx *c, const char *digest)
{
    for (size_t i = 0; i < c->obs->n_images; i++)
        if (c->obs->images[i].digest && strcmp(c->obs->images[i].digest, digest) == 0)
            return &c->obs->images[i];
    return NULL;
}

/* spec.image.verify as the gate needs it: a key reference, attestations as a list of predicate types. */
static bool image_verify_spec_valid(const cJSON *v, release_gate_block *b)
{
    const char *kname = json_str(v, "publicKeySecretRef", "name", NULL);
    const char *kkey = json_str(v, "publicKeySecretRef", "key", NULL);
    const cJSON *att = json_get(v, "attestations", NULL), *a;
    if (!cJSON_IsObject(v))
        return block(b, "InvalidSpec", false, "spec.image.verify is not an object; set publicKeySecretRef in it");
    if (!kname || !*kname || !kkey || !*kkey)
        return block(b, "InvalidSpec", false,
                     "spec.image.verify.publicKeySecretRef needs a name and a key: the Secret and the key in it that "
                     "hold the cosign public key (PEM)");
    if (att && !cJSON_IsNull(att) && !cJSON_IsArray(att))
        return block(b, "InvalidSpec", false,
                     "spec.image.verify.attestations is not a list; list the predicate types that must be attested");
    if (cJSON_GetArraySize(att) > RELEASE_ATTESTATIONS_MAX)
        return block(b, "InvalidSpec", false, "spec.image.verify.attestations lists %d predicate types, more than %d",
                     cJSON_GetArraySize(att), RELEASE_ATTESTATIONS_MAX);
    size_t i = 0;
    cJSON_ArrayForEach(a, att) {
        if (!cJSON_IsString(a) || !*a->valuestring)
            return block(b, "InvalidSpec", false,
                         "spec.image.verify.attestations[%zu] is not a predicate type (a non-empty string such as "
                         "https://slsa.dev/provenance/v1)",
                         i);
        i++;
    }
    const cJSON *ca = json_get(v, "caSecretRef", NULL);
    if (ca && !cJSON_IsNull(ca) &&
        (!json_str(ca, "name", NULL) || !*json_str(ca, "name", NULL) || !json_str(ca, "key", NULL) ||
         !*json_str(ca, "key", NULL)))
        return block(b, "InvalidSpec", false,
                     "spec.image.verify.caSecretRef needs a name and a key: the Secret and the key in it that hold the "
                     "registry's CA certificates (PEM)");
    return true;
}

/*
 * The supply-chain gate (spec.image.verify): the new digest and the rollback
 * target must each carry a cosign signature by the configured key over
 * exactly that digest, and every attestation asked for. The verdicts come
 * from the controller's verifier through obs->images; until they are there
 * the plan asks for them (verify_digests) and the gate waits. A registry or
 * Secret that cannot be read is transient; a refusal needs a human (a
 * signature, or another digest) but is looked at again now and then, so a
 * signature pushed later is found. The rollback target is looked up in the
 * repository of the image it ran from (target_image). On success *signatures records both
 * verdicts for the status and the receipt.
 */
static bool image_gate(const release_ctx *c, release_gate_block *b, const char *target, const char *target_image,
                       cJSON **signatures)
{
    const char *at = strrchr(target_image, '@');
    int target_repo_len = at ? (int)(at - target_image) : (int)strlen(target_image);
    const cJSON *v = json_get(c->spec, "image", "verify", NULL);
    const char *digests[RELEASE_VERIFY_DIGESTS] = {c->digest, target};
    const char *roles[RELEASE_VERIFY_DIGESTS] = {"image", "rollbackTarget"};

    *signatures = NULL;
    if (!v || cJSON_IsNull(v))
        return true;
    if (!image_verify_spec_valid(v, b))
        return false;
    for (size_t i = 0; i < RELEASE_VERIFY_DIGESTS; i++)
        snprintf(c->plan->verify_digests[i], sizeof(c->plan->verify_digests[i]), "%s", digests[i]);
    snprintf(c->plan->verify_repositories[0], sizeof(c->plan->verify_repositories[0]), "%s", c->repository);
    snprintf(c->plan->verify_repositories[1], sizeof(c->plan->verify_repositories[1]), "%.*s", target_repo_len,
             target_image);
    c->plan->n_verify_digests = RELEASE_VERIFY_DIGESTS;
    for (size_t i = 0; i < RELEASE_VERIFY_DIGESTS; i++) {
        const release_image_verdict *vd = image_verdict(c, digests[i]);
        const char *what = i == 0 ? "image" : "rollback target";
        if (!vd)
            return block(b, "ImageNotVerified", true,
                         "the cosign signature of %s %s has not been verified yet; the release waits for the registry",
                         what, digests[i]);
        if (vd->state == RELEASE_IMAGE_VERIFIED)
            continue;
        bool transient = vd->state != RELEASE_IMAGE_REFUSED;
        block(b, "ImageNotVerified", transient, "%s %s is not verified: %s", what, digests[i],
              vd->message && *vd->message ? vd->message : "no reason given");
        if (!transient)
            b->recheck_ms = IMAGE_REFUSED_RECHECK_MS;
        return false;
    }
    if (!(*signatures = cJSON_CreateArray()))
        return oom(b);
    for (size_t i = 0; i < RELEASE_VERIFY_DIGESTS; i++) {
        const release_image_verdict *vd = image_verdict(c, digests[i]);
        cJSON *e = cJSON_CreateObject();
        if (e && !cJSON_AddItemToArray(*signatures, e)) {
            cJSON_Delete(e);
            e = NULL;
        }
        if (!e || json_set_str(e, "role", roles[i]) < 0 || json_set_str(e, "digest", digests[i]) < 0 ||
            json_set_str(e, "payloadDigest", vd->payload_digest ? vd->payload_digest : "") < 0 ||
            json_set_str(e, "layout", vd->layout ? vd->layout : "") < 0 ||
            json_set_str(e, "keyID", vd->key_id ? vd->key_id : "") < 0) {
            cJSON_Delete(*signatures);
            *signatures = NULL;
            return oom(b);
        }
    }
    return true;
}

/*
 * The probe opt-in: spec.membrane.probe makes the operator create pods in the
 * namespaces the clients select, which its install grants and admits only with
 * the probe enabled (--enable-probe: the chart's probe.enabled, kustomize's
 * manifests/probe). Without it the release is blocked before the Deployment
 * is touched rather than rolled out and then failed by a probe that cannot run.
 */
static bool probe_gate(const release_ctx *c, release_gate_block *b)
{
    const cJSON *probe = json_get(c->spec, "membrane", "probe", NULL);
    if (!probe || cJSON_IsNull(probe) || c->obs->probe_enabled)
        return true;
    return block(b, "InvalidSpec", false,
                 "spec.membrane.probe asks for the membrane probe, but this operator runs without --enable-probe, so "
                 "its install may not create the probe's pods; install membrane with the probe (Helm value "
                 "probe.enabled=true, or the kustomize component manifests/probe), or remove spec.membrane.probe");
}

static bool gates_fail(release_gate_record *rec)
{
    cJSON_Delete(rec->promoted);
    cJSON_Delete(rec->signatures);
    rec->promoted = rec->signatures = NULL;
    return false;
}

bool release_gates_check(const release_ctx *c, release_gate_block *b, char target[72], char target_image[512],
                         release_gate_record *rec)
{
    const char *cr = json_str(c->spec, "changeRecord", NULL);
    const char *owner;
    const char *pbname = json_str(c->spec, "policyBundleRef", "name", NULL);

    rec->promoted = rec->signatures = NULL;
    if (!spec_valid(c, b) || !probe_gate(c, b))
        return false;
    if (!cr || !*cr)
        return block(b, "ChangeRecordMissing", false,
                     "spec.changeRecord is empty; link the change ticket or pull request that approves this release");
    if (!c->obs->deployment)
        return block(b, "TargetNotFound", false,
                     "Deployment %s/%s does not exist; create it or fix spec.target.deployment", c->ns, c->deployment);
    if (!release_container_find(json_get(c->obs->deployment, "spec", "template", "spec", NULL), c->container))
        return block(b, "ContainerNotFound", false,
                     "Deployment %s/%s has no container \"%s\" in its pod template; fix spec.target.container", c->ns,
                     c->deployment, c->container);
    owner = json_str(c->obs->deployment, "metadata", "annotations", RELEASE_OWNER_ANNOTATION, NULL);
    if (owner && *owner && strcmp(owner, c->owner) != 0)
        return block(b, "TargetClaimed", false,
                     "Deployment %s/%s is claimed by GovernedAPIRelease %s; one release may own a Deployment, delete "
                     "or retarget the other",
                     c->ns, c->deployment, owner);
    if (pbname) {
        if (!c->obs->policy_bundle)
            return block(b, "PolicyBundleNotReady", true,
                         "PolicyBundle %s/%s does not exist yet; the release waits for it to be Ready", c->ns, pbname);
        char why[300];
        if (!bundle_ready(c->obs->policy_bundle, why, sizeof(why)))
            return block(b, "PolicyBundleNotReady", true,
                         "PolicyBundle %s/%s is not ready: %s; the release waits for it", c->ns, pbname, why);
    }
    if (!order_gate(c, b, &rec->promoted))
        return gates_fail(rec);
    rollback_target(c, target, target_image);
    if (!*target) {
        gates_fail(rec);
        return block(b, "NoRollbackTarget", false,
                     "no rollback target: container \"%s\" does not run an image pinned by digest; set "
                     "spec.rollbackTarget.digest",
                     c->container);
    }
    if (!image_gate(c, b, target, target_image, &rec->signatures))
        return gates_fail(rec);
    return true;
}
