/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "json-util.h"
#include "utf8.h"

static bool is_json_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_letter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * json-c accepts more than JSON even in strict mode: 'single-quoted'
 * strings, NaN and Infinity. Peers written in other languages would choke on
 * what we passed along, so look at everything outside strings first: the
 * only words allowed there are true, false and null, plus an exponent
 * letter right after a digit.
 */
static bool json_is_plain(const char *buf, size_t len) {
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                size_t j;

                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == '"') {
                        in_string = true;
                        continue;
                }
                if (c == '\'' || c == '/')
                        return false;
                if (!is_letter(c))
                        continue;

                for (j = i; j < len && is_letter(buf[j]); j++)
                        ;
                if (i > 0 && ((buf[i - 1] >= '0' && buf[i - 1] <= '9') || buf[i - 1] == '.')) {
                        if (j - i != 1 || (c != 'e' && c != 'E'))
                                return false;
                } else if (!((j - i == 4 && memcmp(buf + i, "true", 4) == 0) ||
                             (j - i == 5 && memcmp(buf + i, "false", 5) == 0) ||
                             (j - i == 4 && memcmp(buf + i, "null", 4) == 0)))
                        return false;
                i = j - 1;
        }
        return true;
}

int json_parse(const char *buf, size_t len, struct json_object **ret) {
        struct json_tokener *tok = NULL;
        struct json_object *o = NULL;
        enum json_tokener_error jerr;
        size_t end;

        if (!buf && len > 0)
                return -EINVAL;
        /* JSON text never holds a raw NUL, and json-c would stop at one
         * silently; refuse it so that what we parse is what we were sent. */
        if (len == 0 || memchr(buf, '\0', len))
                return -EBADMSG;
        /* Checked here rather than with JSON_TOKENER_VALIDATE_UTF8: that flag
         * needs json-c 0.15 (Rocky 9 has 0.14) and lets surrogates and
         * overlong forms through. */
        if (!utf8_is_valid(buf, len, false))
                return -EBADMSG;
        if (len > INT32_MAX)
                return -E2BIG;
        if (!json_is_plain(buf, len))
                return -EBADMSG;

        /* json-c counts the top level as one level of depth, hence +1:
         * 32 nested containers are fine, 33 are not. */
        tok = json_tokener_new_ex(JSON_DEPTH_MAX + 1);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

        o = json_tokener_parse_ex(tok, buf, (int) len);
        jerr = json_tokener_get_error(tok);
        if (!o && jerr == json_tokener_continue) {
                /* A bare top-level number ("42") is only complete once the
                 * tokener sees what follows it; a NUL ends the input. */
                o = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
                end = len;
        } else
                end = json_tokener_parse_end(tok);

        json_tokener_free(tok);

        if (!o) {
                /* json-c returns NULL both for errors and for a literal
                 * "null"; the latter parses with success. */
                if (jerr != json_tokener_success)
                        return jerr == json_tokener_error_depth ? -E2BIG : -EBADMSG;
        }

        /* Anything but whitespace after the value is garbage: two values
         * glued together must not pass as the first. */
        for (size_t i = end; i < len; i++)
                if (!is_json_space(buf[i])) {
                        json_object_put(o);
                        return -EBADMSG;
                }

        *ret = o;
        return 0;
}

int json_parse_object(const char *buf, size_t len, struct json_object **ret) {
        struct json_object *o = NULL;
        int r;

        r = json_parse(buf, len, &o);
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

/* Look up key; absent and JSON null are the same to callers. */
static struct json_object *get_field(struct json_object *obj, const char *key) {
        struct json_object *v = NULL;

        if (!obj || !json_object_is_type(obj, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(obj, key, &v))
                return NULL;
        return v;
}

int json_get_string(struct json_object *obj, const char *key, const char **ret) {
        struct json_object *v = get_field(obj, key);

        if (!v)
                return -ENOENT;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = json_object_get_string(v);
        return 0;
}

int json_get_uint64(struct json_object *obj, const char *key, uint64_t *ret) {
        struct json_object *v = get_field(obj, key);

        if (!v)
                return -ENOENT;

        if (json_object_is_type(v, json_type_int)) {
                int64_t i;
                uint64_t u;

                /* json-c keeps integers as int64 or, above INT64_MAX, as
                 * uint64; a literal beyond UINT64_MAX is clamped with errno
                 * set, which we must not mistake for a real value. */
                errno = 0;
                i = json_object_get_int64(v);
                if (i < 0)
                        return -EBADMSG;
                if (i < INT64_MAX) {
                        *ret = (uint64_t) i;
                        return 0;
                }
                errno = 0;
                u = json_object_get_uint64(v);
                if (errno != 0 || u == UINT64_MAX)
                        return -EBADMSG;
                *ret = u;
                return 0;
        }

        if (json_object_is_type(v, json_type_double)) {
                double d = json_object_get_double(v);

                /* 42.0 is an integer; 42.5, -1 and 1e30 are not. */
                if (!isfinite(d) || d < 0 || d >= 18446744073709551616.0 || floor(d) != d)
                        return -EBADMSG;
                *ret = (uint64_t) d;
                return 0;
        }

        return -EBADMSG;
}

int json_get_bool(struct json_object *obj, const char *key, bool *ret) {
        struct json_object *v = get_field(obj, key);

        if (!v)
                return -ENOENT;
        if (!json_object_is_type(v, json_type_boolean))
                return -EBADMSG;
        *ret = json_object_get_boolean(v);
        return 0;
}

const char *json_to_string_compact(struct json_object *obj) {
        return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE);
}
