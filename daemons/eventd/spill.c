/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "spill.h"

#define SPILL_MAGIC "CCS1"
/* A batch name is "<128-bit id>:<n>"; anything much longer is corruption. */
#define SPILL_NAME_MAX 256
/* archive.c never builds a batch this big; a longer length is corruption. */
#define SPILL_DATA_MAX (UINT64_C(1) << 31)

/* Host byte order: the file never leaves this machine. */
typedef struct SpillHeader {
        char magic[4];
        uint32_t name_len;
        uint64_t rows;
        uint64_t data_len;
} SpillHeader;

struct Spill {
        int fd;
        char *path;
        uint64_t read_off, write_off;   /* next record to read; end of the last whole record */
        uint64_t rows, records;         /* unread */
        /* The header at read_off, valid when peeked. */
        SpillHeader next;
        bool peeked;
};

static int pread_full(int fd, void *buf, size_t len, uint64_t off) {
        char *p = buf;

        while (len > 0) {
                ssize_t n = pread(fd, p, len, (off_t) off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EBADMSG;        /* short file */
                p += n, len -= (size_t) n, off += (uint64_t) n;
        }
        return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off) {
        const char *p = buf;

        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, (off_t) off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n, len -= (size_t) n, off += (uint64_t) n;
        }
        return 0;
}

static bool header_ok(const SpillHeader *h) {
        return memcmp(h->magic, SPILL_MAGIC, 4) == 0 && h->name_len > 0 && h->name_len <= SPILL_NAME_MAX &&
               h->data_len <= SPILL_DATA_MAX;
}

/* Walk the records a previous run left: count them, and cut the file after
 * the last whole one (a crash in the middle of an append). */
static int spill_recover(Spill *s, uint64_t size) {
        uint64_t off = 0;

        while (off + sizeof(SpillHeader) <= size) {
                SpillHeader h;
                uint64_t end;
                int r;

                r = pread_full(s->fd, &h, sizeof(h), off);
                if (r < 0)
                        return r;
                if (!header_ok(&h))
                        break;
                end = off + sizeof(h) + h.name_len + h.data_len;
                if (end > size)
                        break;
                s->rows += h.rows;
                s->records++;
                off = end;
        }
        if (off < size && ftruncate(s->fd, (off_t) off) < 0)
                return -errno;
        s->write_off = off;
        return 0;
}

int spill_open(Spill **ret, const char *dir) {
        _cleanup_(freep) Spill *s = NULL;
        struct stat st;
        int r;

        if (!ret || !dir || !*dir)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        if (asprintf(&s->path, "%s/%s", dir, SPILL_FILE_NAME) < 0) {
                s->path = NULL;
                return -ENOMEM;
        }
        s->fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->fd < 0 || fstat(s->fd, &st) < 0) {
                r = -errno;
                goto fail;
        }
        r = spill_recover(s, (uint64_t) st.st_size);
        if (r < 0)
                goto fail;
        *ret = TAKE_PTR(s);
        return 0;

fail:
        if (s->fd >= 0)
                (void) close(s->fd);
        free(s->path);
        return r;
}

Spill *spill_free(Spill *s) {
        if (!s)
                return NULL;
        if (s->fd >= 0)
                (void) close(s->fd);
        free(s->path);
        free(s);
        return NULL;
}

int spill_append(Spill *s, const char *name, uint64_t rows, const void *data, size_t len) {
        SpillHeader h = { .rows = rows, .data_len = len };
        size_t name_len;
        uint64_t off;
        int r;

        if (!s || !name || (!data && len > 0))
                return -EINVAL;
        name_len = strlen(name);
        if (name_len == 0 || name_len > SPILL_NAME_MAX || len > SPILL_DATA_MAX)
                return -EINVAL;
        memcpy(h.magic, SPILL_MAGIC, 4);
        h.name_len = (uint32_t) name_len;

        off = s->write_off;
        r = pwrite_full(s->fd, &h, sizeof(h), off);
        if (r >= 0)
                r = pwrite_full(s->fd, name, name_len, off + sizeof(h));
        if (r >= 0)
                r = pwrite_full(s->fd, data, len, off + sizeof(h) + name_len);
        if (r < 0) {
                /* Leave no torn record behind: the next append starts here. */
                (void) ftruncate(s->fd, (off_t) off);
                return r;
        }
        s->write_off = off + sizeof(h) + name_len + len;
        s->rows += rows;
        s->records++;
        return 0;
}

static int spill_read_header(Spill *s) {
        int r;

        if (s->peeked)
                return 1;
        if (s->read_off >= s->write_off)
                return 0;
        r = pread_full(s->fd, &s->next, sizeof(s->next), s->read_off);
        if (r < 0)
                return r;
        if (!header_ok(&s->next) ||
            s->read_off + sizeof(s->next) + s->next.name_len + s->next.data_len > s->write_off)
                return -EBADMSG;
        s->peeked = true;
        return 1;
}

size_t spill_peek(const Spill *s) {
        /* Reading the header changes only the cache, not what is read. */
        Spill *m = (Spill *) s;

        if (!s || spill_read_header(m) <= 0)
                return 0;
        return (size_t) s->next.data_len;
}

int spill_next(Spill *s, char **ret_name, uint64_t *ret_rows, char **ret_data, size_t *ret_len) {
        _cleanup_(freep) char *name = NULL, *data = NULL;
        uint64_t off;
        int r;

        if (!s || !ret_name || !ret_rows || !ret_data || !ret_len)
                return -EINVAL;
        r = spill_read_header(s);
        if (r == -EBADMSG) {
                /* Nothing after a bad header can be trusted: skip it all. */
                s->read_off = s->write_off;
                s->rows = s->records = 0;
        }
        if (r <= 0)
                return r;

        name = malloc(s->next.name_len + 1);
        data = malloc(s->next.data_len ? s->next.data_len : 1);
        if (!name || !data)
                return -ENOMEM;
        off = s->read_off + sizeof(s->next);
        r = pread_full(s->fd, name, s->next.name_len, off);
        if (r >= 0)
                r = pread_full(s->fd, data, s->next.data_len, off + s->next.name_len);
        if (r < 0)
                return r;
        name[s->next.name_len] = '\0';

        s->read_off = off + s->next.name_len + s->next.data_len;
        s->rows -= s->next.rows <= s->rows ? s->next.rows : s->rows;
        s->records -= s->records > 0;
        s->peeked = false;
        *ret_rows = s->next.rows;
        *ret_len = (size_t) s->next.data_len;
        *ret_name = TAKE_PTR(name);
        *ret_data = TAKE_PTR(data);
        return 1;
}

int spill_reset(Spill *s) {
        if (!s || s->read_off < s->write_off)
                return 0;
        if (s->write_off == 0)
                return 0;
        if (ftruncate(s->fd, 0) < 0)
                return -errno;
        s->read_off = s->write_off = 0;
        s->rows = s->records = 0;
        s->peeked = false;
        return 0;
}

void spill_get_stats(const Spill *s, SpillStats *ret) {
        if (!ret)
                return;
        *ret = (SpillStats) {};
        if (!s)
                return;
        ret->rows = s->rows;
        ret->records = s->records;
        ret->bytes = s->write_off;
}

const char *spill_get_path(const Spill *s) {
        return s ? s->path : NULL;
}
