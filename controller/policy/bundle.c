/*
 * OPA bundles, the pure part: the gzip tar read from memory with libarchive
 * under the structure rules, the .manifest, the roots and the decision judge
 * (the signatures are in signature.c).
 *
 * Entry names. `opa build` writes every entry with a leading "/" ("/.manifest",
 * "/data.json", "/kfm/policy.rego": bundle/bundle.go, Writer.Write, prefixes
 * each path with "/"), and OPA's reader takes those names as they are, relative
 * to the bundle root (the signature check strips that one "/"). So one leading
 * "/" names the bundle root, and so does a leading "./" (as `tar -C dir .`
 * writes). What remains must be a clean relative path: an entry still starting
 * with "/" ("//etc/passwd") is absolute, any ".." segment is refused, and so are
 * empty and "." segments inside the path ("a//b", "a/./b"), which would let two
 * names denote one file. A directory's trailing "/" is dropped.
 */
#include "policy/bundle.h"
#include "util/text.h"
#include "policy/bundle_private.h"
#include "util/error.h"
#include "util/gojson.h"
#include "util/yaml.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More entries than this are refused: each costs memory whatever its size. */
#define BUNDLE_MAX_ENTRIES 65536
#define BUNDLE_NAME_SHOWN 160
/* OPA compares every two roots for overlap; so do we, up to this many */
#define BUNDLE_MAX_ROOTS 4096

typedef struct {
    struct archive *a;
    bundle *b;
    size_t cap;
    long long max_unpacked;
    long long max_stream; /* tar headers and padding included */
    char *err;
} reader;

static int fail(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, BUNDLE_ERROR_MAX, fmt, ap);
    va_end(ap);
    return mb_error_set(code, "%s", err);
}

static int oom(char *err)
{
    return fail(err, MB_ENOMEM, "out of memory while reading the bundle");
}

/*
 * Checks the entry name raw and writes its normalized form into *out (NULL for
 * the bundle root itself, "." or "/"). 0 or MB_EINVAL/MB_ENOMEM.
 */
static int normalize(const char *raw, bool dir, char **out, char *err)
{
    char show[BUNDLE_NAME_SHOWN + 4];
    const char *p = raw;

    *out = NULL;
    mb_text_shown(show, BUNDLE_NAME_SHOWN, raw);
    if (*p == '/')
        p++;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    size_t n = strlen(p);
    if (n == 0 || (n == 1 && p[0] == '.')) {
        if (!dir)
            return fail(err, MB_EINVAL, "entry %s: a file must have a name", show);
        return 0;
    }
    if (p[0] == '/')
        return fail(err, MB_EINVAL, "entry %s: an absolute path is not allowed", show);
    if (dir && p[n - 1] == '/')
        n--;
    /* every segment: not "..", not "" or "." */
    bool dotdot = false, unclean = false;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        size_t seg = j - i;
        if (seg == 2 && p[i] == '.' && p[i + 1] == '.')
            dotdot = true;
        else if (seg == 0 || (seg == 1 && p[i] == '.'))
            unclean = true;
        i = j + 1;
    }
    if (dotdot)
        return fail(err, MB_EINVAL, "entry %s: a path with .. is not allowed", show);
    if (unclean)
        return fail(err, MB_EINVAL, "entry %s: an empty or \".\" path segment is not allowed", show);
    if (!(*out = strndup(p, n)))
        return oom(err);
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *base_name(const char *s)
{
    const char *slash = strrchr(s, '/');
    return slash ? slash + 1 : s;
}

/*
 * Whether libarchive's last failure was an allocation. Some of its failed
 * allocations return ARCHIVE_FATAL bare, but so do some of its refusals of a
 * malformed stream: only ENOMEM counts, and a bare failure is taken as the
 * input's (fail closed: the bundle is refused, never let through).
 */
static bool archive_oom(struct archive *a)
{
    return archive_errno(a) == ENOMEM;
}

static const char *archive_why(struct archive *a)
{
    const char *why = archive_error_string(a);
    return why ? why : "the archive is malformed";
}

/* libarchive's failure as an error: MB_ENOMEM when it ran out of memory. */
static int archive_fail(reader *r, const char *what)
{
    if (archive_oom(r->a))
        return oom(r->err);
    return fail(r->err, MB_EINVAL, "%s: %s", what, archive_why(r->a));
}

static int read_data(reader *r, bundle_file *f, const char *show, long long hint)
{
    size_t cap = 0;
    long long room = r->max_unpacked - r->b->unpacked_bytes;

    /* the header's size is a hint for the first buffer, never trusted beyond the budget */
    if (hint < 0 || hint > room)
        hint = room;
    if (hint > (1 << 20))
        hint = 1 << 20;
    cap = (size_t)hint + 1;
    if (!(f->data = malloc(cap)))
        return oom(r->err);
    for (;;) {
        if (cap - f->len < 4096 + 1) {
            size_t want = cap * 2 < cap + 4096 + 1 ? cap + 4096 + 1 : cap * 2;
            unsigned char *d = realloc(f->data, want);
            if (!d)
                return oom(r->err);
            f->data = d;
            cap = want;
        }
        la_ssize_t got = archive_read_data(r->a, f->data + f->len, cap - f->len - 1);
        if (got == 0)
            break;
        if (got < 0) {
            char what[BUNDLE_NAME_SHOWN + 64];
            snprintf(what, sizeof(what), "entry %s", show);
            return archive_fail(r, what);
        }
        f->len += (size_t)got;
        r->b->unpacked_bytes += got;
        if (r->b->unpacked_bytes > r->max_unpacked)
            return fail(r->err, MB_EINVAL, "entry %s: the bundle unpacks to more than %lld bytes", show,
                        r->max_unpacked);
    }
    f->data[f->len] = '\0';
    return 0;
}

static int read_entry(reader *r, struct archive_entry *e)
{
    char show[BUNDLE_NAME_SHOWN + 4];
    const char *raw = archive_entry_pathname(e);
    if (!raw)
        raw = archive_entry_pathname_utf8(e);
    if (!raw)
        return fail(r->err, MB_EINVAL, "an entry has a name that cannot be read");
    mb_text_shown(show, BUNDLE_NAME_SHOWN, raw);

    mode_t type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e))
        return fail(r->err, MB_EINVAL, "entry %s: a hardlink is not allowed", show);
    switch (type) {
    case AE_IFREG:
    case AE_IFDIR: break;
    case AE_IFLNK: return fail(r->err, MB_EINVAL, "entry %s: a symlink is not allowed", show);
    case AE_IFCHR:
    case AE_IFBLK: return fail(r->err, MB_EINVAL, "entry %s: a device is not allowed", show);
    case AE_IFIFO: return fail(r->err, MB_EINVAL, "entry %s: a fifo is not allowed", show);
    default: return fail(r->err, MB_EINVAL, "entry %s: only regular files and directories are allowed", show);
    }

    char *name = NULL;
    int err = normalize(raw, type == AE_IFDIR, &name, r->err);
    if (err < 0 || type == AE_IFDIR) {
        free(name);
        return err;
    }
    if (r->b->nfiles >= BUNDLE_MAX_ENTRIES) {
        free(name);
        return fail(r->err, MB_EINVAL, "the bundle has more than %d files", BUNDLE_MAX_ENTRIES);
    }
    if (r->b->nfiles == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        bundle_file *files = realloc(r->b->files, cap * sizeof(*files));
        if (!files) {
            free(name);
            return oom(r->err);
        }
        r->b->files = files;
        r->cap = cap;
    }
    bundle_file *f = &r->b->files[r->b->nfiles++];
    *f = (bundle_file){.name = name};
    return read_data(r, f, show, archive_entry_size_is_set(e) ? (long long)archive_entry_size(e) : 0);
}

static int cmp_names(const void *x, const void *y)
{
    const bundle_file *const *a = x, *const *b = y;
    return strcmp((*a)->name, (*b)->name);
}

static int check_duplicates(bundle *b, char *err)
{
    if (b->nfiles < 2)
        return 0;
    const bundle_file **sorted = malloc(b->nfiles * sizeof(*sorted));
    if (!sorted)
        return oom(err);
    for (size_t i = 0; i < b->nfiles; i++)
        sorted[i] = &b->files[i];
    qsort(sorted, b->nfiles, sizeof(*sorted), cmp_names);
    int rc = 0;
    for (size_t i = 1; i < b->nfiles && !rc; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) {
            char show[BUNDLE_NAME_SHOWN + 4];
            mb_text_shown(show, BUNDLE_NAME_SHOWN, sorted[i]->name);
            rc = fail(err, MB_EINVAL, "entry %s: the bundle holds it more than once", show);
        }
    free(sorted);
    return rc;
}

/* Segments of a root with OPA's trim of leading and trailing "/". */
static void trim_root(const char *s, const char **start, size_t *len)
{
    size_t n = strlen(s);
    while (n && *s == '/')
        s++, n--;
    while (n && s[n - 1] == '/')
        n--;
    *start = s;
    *len = n;
}

/* OPA's rootContains: root's segments are a prefix of path's; the root "" contains everything. */
static bool root_contains(const char *root, const char *path)
{
    const char *r, *p;
    size_t rn, pn;
    trim_root(root, &r, &rn);
    trim_root(path, &p, &pn);
    if (rn == 0)
        return true;
    if (rn > pn || memcmp(r, p, rn) != 0)
        return false;
    return rn == pn || p[rn] == '/';
}

static int read_manifest(bundle *b, char *err)
{
    const bundle_file *m = b->manifest;
    cJSON *doc = NULL;
    int rc = mb_gojson_parse(&doc, m->data, m->len, false);

    if (rc == MB_ENOMEM)
        return oom(err);
    if (rc < 0)
        return fail(err, MB_EINVAL, ".manifest is not valid JSON");
    if (!cJSON_IsObject(doc)) {
        rc = fail(err, MB_EINVAL, ".manifest must be a JSON object");
        goto done;
    }
    /* Go's decoder takes the last of two members with one name, cJSON the first: refuse the doubt */
    int revisions = 0, rootss = 0;
    for (const cJSON *i = doc->child; i; i = i->next) {
        revisions += strcmp(i->string, "revision") == 0;
        rootss += strcmp(i->string, "roots") == 0;
    }
    if (revisions > 1 || rootss > 1) {
        rc = fail(err, MB_EINVAL, ".manifest: member %s appears more than once", revisions > 1 ? "revision" : "roots");
        goto done;
    }

    /* null is absent, as Go's decoder into OPA's Manifest takes it */
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(doc, "revision");
    if (rev && !cJSON_IsNull(rev) && !cJSON_IsString(rev)) {
        rc = fail(err, MB_EINVAL, ".manifest: revision must be a string");
        goto done;
    }
    if (!(b->revision = strdup(cJSON_IsString(rev) ? rev->valuestring : ""))) {
        rc = oom(err);
        goto done;
    }

    cJSON *roots = cJSON_GetObjectItemCaseSensitive(doc, "roots");
    if (!roots || cJSON_IsNull(roots)) {
        if (!(b->roots = cJSON_CreateArray()) || !cJSON_AddItemToArray(b->roots, cJSON_CreateString(""))) {
            rc = oom(err);
            goto done;
        }
    } else {
        if (!cJSON_IsArray(roots)) {
            rc = fail(err, MB_EINVAL, ".manifest: roots must be an array of strings");
            goto done;
        }
        if (cJSON_GetArraySize(roots) > BUNDLE_MAX_ROOTS) {
            rc = fail(err, MB_EINVAL, ".manifest: more than %d roots", BUNDLE_MAX_ROOTS);
            goto done;
        }
        int i = 0;
        for (const cJSON *r = roots->child; r; r = r->next, i++)
            if (!cJSON_IsString(r)) {
                rc = fail(err, MB_EINVAL, ".manifest: roots[%d] must be a string", i);
                goto done;
            }
        /* OPA refuses overlapping roots when it activates the bundle */
        for (const cJSON *x = roots->child; x; x = x->next)
            for (const cJSON *y = x->next; y; y = y->next)
                if (root_contains(x->valuestring, y->valuestring) || root_contains(y->valuestring, x->valuestring)) {
                    rc = fail(err, MB_EINVAL, ".manifest: roots \"%.100s\" and \"%.100s\" overlap", x->valuestring,
                              y->valuestring);
                    goto done;
                }
        b->roots = cJSON_DetachItemViaPointer(doc, roots);
    }
done:
    cJSON_Delete(doc);
    return rc;
}

static int check_data(const bundle_file *f, char *err)
{
    char show[BUNDLE_NAME_SHOWN + 4];
    const char *base = base_name(f->name);
    cJSON *doc = NULL;
    int rc = 0;

    mb_text_shown(show, BUNDLE_NAME_SHOWN, f->name);
    if (strcmp(base, "data.json") == 0) {
        if ((rc = mb_gojson_parse(&doc, f->data, f->len, false)) < 0)
            return rc == MB_ENOMEM ? oom(err) : fail(err, MB_EINVAL, "%s is not valid JSON", show);
    } else if (strcmp(base, "data.yaml") == 0 || strcmp(base, "data.yml") == 0) {
        /* OPA loads these as data too: held to the same rule, parsed as YAML */
        if ((rc = mb_yaml_parse(&doc, (const char *)f->data, f->len, show)) < 0) {
            if (rc == MB_ENOMEM)
                return oom(err);
            return fail(err, MB_EINVAL, "%s is not valid YAML: %s", show, mb_error_last());
        }
    } else {
        return 0;
    }
    if (!rc && !cJSON_IsObject(doc))
        rc = fail(err, MB_EINVAL, "%s must hold a JSON object", show);
    cJSON_Delete(doc);
    return rc;
}

int bundle_check_structure(bundle *b, char err[BUNDLE_ERROR_MAX])
{
    int rc;
    if ((rc = check_duplicates(b, err)) < 0)
        return rc;
    for (size_t i = 0; i < b->nfiles; i++) {
        const bundle_file *f = &b->files[i];
        if (strcmp(f->name, ".manifest") == 0)
            b->manifest = f;
        else if (strcmp(f->name, ".signatures.json") == 0)
            b->signatures = f;
        else if (ends_with(f->name, ".manifest") || strcmp(base_name(f->name), ".signatures.json") == 0) {
            char show[BUNDLE_NAME_SHOWN + 4];
            mb_text_shown(show, BUNDLE_NAME_SHOWN, f->name);
            /* OPA takes any file ending in .manifest for the manifest, any .signatures.json for the signatures */
            return fail(err, MB_EINVAL, "entry %s: only the bundle root may hold a %s", show,
                        ends_with(f->name, ".manifest") ? ".manifest" : ".signatures.json");
        }
        if (ends_with(f->name, ".rego"))
            b->rego_modules++;
    }
    if (!b->manifest)
        return fail(err, MB_EINVAL, "%s",
                    bundle_find(b, ".manifest.pb") ? ".manifest is missing (a protobuf .manifest.pb is not supported)"
                                                   : ".manifest is missing");
    if ((rc = read_manifest(b, err)) < 0)
        return rc;
    if (b->rego_modules == 0)
        return fail(err, MB_EINVAL, "the bundle has no .rego file");
    for (size_t i = 0; i < b->nfiles; i++)
        if ((rc = check_data(&b->files[i], err)) < 0)
            return rc;
    return 0;
}

/*
 * The bytes as libarchive's one read source. archive_read_open_memory does
 * the same, but (libarchive 3.6) ignores a failed allocation of its callback
 * data and then dereferences NULL; these calls check every step.
 */
typedef struct {
    const void *data;
    size_t len;
    bool done;
} memory_source;

static la_ssize_t memory_read(struct archive *a, void *ctx, const void **buf)
{
    (void)a;
    memory_source *m = ctx;
    *buf = m->data;
    if (m->done)
        return 0;
    m->done = true;
    return (la_ssize_t)m->len;
}

int bundle_read(bundle **out, const void *gz, size_t len, long long max_unpacked, char err[BUNDLE_ERROR_MAX])
{
    const unsigned char *bytes = gz;
    reader r = {.max_unpacked = max_unpacked, .err = err};
    struct archive_entry *e = NULL;
    int rc = 0;

    *out = NULL;
    err[0] = '\0';
    if (max_unpacked < 0)
        max_unpacked = r.max_unpacked = 0;
    if (len < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b)
        return fail(err, MB_EINVAL, "not a gzip tar: the bytes do not start as gzip does");
    r.max_stream = max_unpacked > (LLONG_MAX - (1 << 20)) / 2 ? LLONG_MAX : max_unpacked * 2 + (1 << 20);
    if (!(r.b = calloc(1, sizeof(*r.b))))
        return oom(err);
    /*
     * Our own entry for archive_read_next_header2: archive_read_new does not
     * check the allocation of the one it keeps, and archive_read_next_header
     * would use it NULL.
     */
    if (!(r.a = archive_read_new()) || !(e = archive_entry_new())) {
        rc = oom(err);
        goto done;
    }
    if (archive_read_support_filter_gzip(r.a) != ARCHIVE_OK || archive_read_support_format_tar(r.a) != ARCHIVE_OK) {
        rc = archive_fail(&r, "cannot read a gzip tar");
        goto done;
    }
    memory_source src = {gz, len, false};
    if (archive_read_set_read_callback(r.a, memory_read) != ARCHIVE_OK ||
        archive_read_set_callback_data(r.a, &src) != ARCHIVE_OK) {
        rc = oom(err); /* nothing read yet: only memory can fail */
        goto done;
    }
    if (archive_read_open1(r.a) != ARCHIVE_OK) {
        rc = archive_oom(r.a) ? oom(err) : fail(err, MB_EINVAL, "not a gzip tar: %s", archive_why(r.a));
        goto done;
    }
    for (bool first = true;; first = false) {
        int st = archive_read_next_header2(r.a, e);
        if (st == ARCHIVE_EOF)
            break;
        if (st != ARCHIVE_OK && st != ARCHIVE_WARN) {
            if (first && !archive_oom(r.a))
                rc = fail(err, MB_EINVAL, "not a gzip tar: %s", archive_why(r.a));
            else
                rc = archive_fail(&r, "the tar is malformed");
            goto done;
        }
        if (first && (archive_filter_count(r.a) < 2 || archive_filter_code(r.a, 0) != ARCHIVE_FILTER_GZIP ||
                      (archive_format(r.a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR)) {
            rc = fail(err, MB_EINVAL, "not a gzip tar");
            goto done;
        }
        if ((rc = read_entry(&r, e)) < 0)
            goto done;
        if (archive_filter_bytes(r.a, 0) > r.max_stream) {
            rc = fail(err, MB_EINVAL, "the bundle unpacks to more than %lld bytes", max_unpacked);
            goto done;
        }
    }
    rc = bundle_check_structure(r.b, err);

done:
    archive_entry_free(e);
    if (r.a)
        archive_read_free(r.a);
    if (rc < 0) {
        bundle_free(r.b);
        return rc;
    }
    *out = r.b;
    return 0;
}

void bundle_free(bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nfiles; i++) {
        free(b->files[i].name);
        free(b->files[i].data);
    }
    free(b->files);
    free(b->revision);
    cJSON_Delete(b->roots);
    free(b);
}

const bundle_file *bundle_find(const bundle *b, const char *name)
{
    if (!b || !name)
        return NULL;
    for (size_t i = 0; i < b->nfiles; i++)
        if (strcmp(b->files[i].name, name) == 0)
            return &b->files[i];
    return NULL;
}

const char *bundle_missing_root(const bundle *b, const cJSON *required)
{
    const cJSON *want, *roots = b ? b->roots : NULL;
    cJSON_ArrayForEach(want, required) {
        if (!cJSON_IsString(want))
            return "(a required root that is not a string)";
        bool covered = false;
        const cJSON *root;
        cJSON_ArrayForEach(root, roots) {
            if (cJSON_IsString(root) && root_contains(root->valuestring, want->valuestring)) {
                covered = true;
                break;
            }
        }
        if (!covered)
            return want->valuestring;
    }
    return NULL;
}

/* JSON equality: numbers by value, object members in any order, arrays in order. */
static bool json_equal(const cJSON *a, const cJSON *b, int depth)
{
    if (!a || !b || depth > 1000)
        return false;
    int ta = a->type & 0xff, tb = b->type & 0xff;
    if (ta != tb)
        return false;
    switch (ta) {
    case cJSON_NULL:
    case cJSON_True:
    case cJSON_False: return true;
    case cJSON_Number: return a->valuedouble == b->valuedouble;
    case cJSON_String: return a->valuestring && b->valuestring && strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!json_equal(x, y, depth + 1))
                return false;
        return !x && !y;
    }
    case cJSON_Object: {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
            return false;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y || !json_equal(x, y, depth + 1))
                return false;
        }
        for (const cJSON *y = b->child; y; y = y->next)
            if (!cJSON_GetObjectItemCaseSensitive(a, y->string))
                return false;
        return true;
    }
    default: return false;
    }
}

bool bundle_decision_matches(const char *body, size_t len, const cJSON *expect, char **got)
{
    cJSON *doc = body ? cJSON_ParseWithLength(body, len) : NULL;
    bool match = false;

    if (got)
        *got = NULL;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return false;
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(doc, "result");
    if (result)
        match = json_equal(result, expect, 0);
    if (got && !(*got = result ? cJSON_PrintUnformatted(result) : strdup("undefined")))
        match = false; /* out of memory: never a pass */
    cJSON_Delete(doc);
    return match;
}
