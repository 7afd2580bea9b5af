/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Scope-bound cleanup, in the manner of systemd's cleanup-fundamental.h.
 * Declare with _cleanup_(freep) char *s = NULL; and the value is released
 * on every return path. TAKE_PTR()/TAKE_FD() hand ownership out.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Generates a helper that calls func(*p) when *p is not empty. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

/* Take a pointer out of a cleanup variable, leaving NULL behind. */
#define TAKE_PTR(p)                             \
        ({                                      \
                __typeof__(p) _p_ = (p);        \
                (p) = NULL;                     \
                _p_;                            \
        })

#define TAKE_FD(fd)                             \
        ({                                      \
                int _fd_ = (fd);                \
                (fd) = -1;                      \
                _fd_;                           \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

/* Free a NULL-terminated vector of strings and the vector. Returns NULL. */
static inline char **strv_free(char **l) {
        if (l)
                for (char **i = l; *i; i++)
                        free(*i);
        free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

/*
 * Cleanup for the libraries we wrap. They are declared here only when the
 * library header was included first, so a file pays for what it uses.
 */
#ifdef LIBPQ_FE_H
DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear);
DEFINE_TRIVIAL_CLEANUP_FUNC(PGconn *, PQfinish);
#endif

#ifdef _json_object_h_
static inline void json_object_putp(struct json_object **o) {
        if (*o)
                (void) json_object_put(*o);
}
#endif

#ifdef __ZMQ_H_INCLUDED__
static inline void zmq_closep(void **s) {
        if (*s) {
                int linger = 0;
                (void) zmq_setsockopt(*s, ZMQ_LINGER, &linger, sizeof(linger));
                (void) zmq_close(*s);
        }
}
#endif
