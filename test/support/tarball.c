/*
 * libarchive's writer into a growing buffer (archive_write_open2 callbacks).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tarball.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

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
            return -1;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, buf, n);
    s->len += n;
    return (la_ssize_t)n;
}

void tarball_make(unsigned char **out, size_t *len, const tar_entry *entries, size_t n, tarball_kind kind)
{
    sink s = {0};
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (kind == TARBALL_GZIP_PAX || kind == TARBALL_GZIP_USTAR || kind == TARBALL_GZIP_ZIP)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    switch (kind) {
    case TARBALL_GZIP_PAX:
    case TARBALL_PLAIN_TAR: assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK); break;
    case TARBALL_GZIP_USTAR: assert_int_equal(archive_write_set_format_ustar(a), ARCHIVE_OK); break;
    case TARBALL_GZIP_ZIP:
    case TARBALL_ZIP: assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK); break;
    }
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open2(a, &s, NULL, sink_write, NULL, NULL), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        const tar_entry *t = &entries[i];
        size_t size = t->data ? (t->len ? t->len : strlen(t->data)) : 0;
        struct archive_entry *e = archive_entry_new();
        assert_non_null(e);
        archive_entry_set_pathname(e, t->name);
        archive_entry_set_mtime(e, 1700000000, 0);
        switch (t->type) {
        case TAR_FILE:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)size);
            break;
        case TAR_DIR:
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case TAR_SYMLINK:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, t->link);
            break;
        case TAR_HARDLINK:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_hardlink(e, t->link);
            archive_entry_set_size(e, 0);
            break;
        case TAR_CHARDEV:
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_perm(e, 0600);
            archive_entry_set_rdev(e, 0x0103);
            break;
        case TAR_FIFO:
            archive_entry_set_filetype(e, AE_IFIFO);
            archive_entry_set_perm(e, 0600);
            break;
        }
        int st = archive_write_header(a, e);
        if (st != ARCHIVE_OK)
            fail_msg("archive_write_header %s: %s", t->name, archive_error_string(a));
        if (t->type == TAR_FILE && size)
            assert_int_equal(archive_write_data(a, t->data, size), (la_ssize_t)size);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    *out = s.data;
    *len = s.len;
}
