/*
 * Archives made in memory with libarchive's writer, for the tests of the
 * bundle reader: no binary tarball is checked in, each test writes what it
 * reads.
 */
#ifndef TEST_TARBALL_H
#define TEST_TARBALL_H

#include <stddef.h>

typedef enum {
    TAR_FILE = 0, /* a regular file holding data */
    TAR_DIR,
    TAR_SYMLINK,  /* to link */
    TAR_HARDLINK, /* to link */
    TAR_CHARDEV,
    TAR_FIFO,
} tar_type;

typedef struct {
    const char *name;
    const char *data; /* NULL: empty */
    size_t len;       /* 0: strlen(data) */
    tar_type type;
    const char *link;
} tar_entry;

typedef enum {
    TARBALL_GZIP_PAX = 0, /* what a bundle must be */
    TARBALL_GZIP_USTAR,
    TARBALL_PLAIN_TAR, /* no gzip */
    TARBALL_GZIP_ZIP,  /* a zip, gzipped */
    TARBALL_ZIP,
} tarball_kind;

/*
 * The archive of entries[0..n) in *out (the caller frees it) and its length in
 * *len; fails the running cmocka test when libarchive refuses.
 */
void tarball_make(unsigned char **out, size_t *len, const tar_entry *entries, size_t n, tarball_kind kind);

#endif
