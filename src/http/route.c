/* SPDX-License-Identifier: MIT */
/*
 * route.c - REST routes of the gateway: parsing `METHOD /path/{param}
 * service`, matching a request path against the templates segment by
 * segment, and building the JSON payload from the path parameters.
 *
 * Matching is exact per segment: a trailing slash is one more (empty)
 * segment, so "/fib/1/" does not match "/fib/{n}". A parameter never
 * matches an empty segment.
 */
#include "http/route.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/respond.h"

static bool
route_is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

ferry_err
route_parse(const char *spec, struct route *out, char *err, size_t err_size)
{
    struct route r;
    char *p, *method, *tmpl, *service, *extra, *save = NULL;
    size_t mlen;

    memset(&r, 0, sizeof(r));
    r.spec = strdup(spec);
    if (r.spec == NULL) {
        snprintf(err, err_size, "route '%s': out of memory", spec);
        return FERRY_ENOMEM;
    }
    method = strtok_r(r.spec, " \t", &save);
    tmpl = strtok_r(NULL, " \t", &save);
    service = strtok_r(NULL, " \t", &save);
    extra = strtok_r(NULL, " \t", &save);
    if (method == NULL || tmpl == NULL || service == NULL || extra != NULL) {
        snprintf(err, err_size,
                 "route '%s': expected 'METHOD /path/{param} service'", spec);
        goto out_free;
    }
    mlen = strlen(method);
    if (mlen > ROUTE_MAX_METHOD) {
        snprintf(err, err_size, "route '%s': method too long", spec);
        goto out_free;
    }
    for (size_t i = 0; i < mlen; i++) {
        if (!isupper((unsigned char)method[i])) {
            snprintf(err, err_size,
                     "route '%s': method '%s' is not an upper-case word", spec,
                     method);
            goto out_free;
        }
    }
    memcpy(r.method, method, mlen + 1);
    if (tmpl[0] != '/') {
        snprintf(err, err_size, "route '%s': path must start with '/'", spec);
        goto out_free;
    }
    r.service = service;
    r.service_len = strlen(service);
    if (r.service_len > FRAME_MAX_NAME) {
        snprintf(err, err_size, "route '%s': service name too long", spec);
        goto out_free;
    }
    /* Cut the template into segments; each one ends at the next '/'. */
    p = tmpl + 1;
    for (;;) {
        char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        struct route_seg *seg;

        if (r.n_segs == ROUTE_MAX_SEGS) {
            snprintf(err, err_size, "route '%s': more than %d segments", spec,
                     ROUTE_MAX_SEGS);
            goto out_free;
        }
        seg = &r.segs[r.n_segs++];
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
            seg->param = true;
            seg->text = p + 1;
            seg->len = n - 2;
            for (size_t i = 0; i < seg->len; i++) {
                if (!isalnum((unsigned char)seg->text[i]) &&
                    seg->text[i] != '_') {
                    seg->len = 0;
                    break;
                }
            }
            if (seg->len == 0) {
                snprintf(err, err_size,
                         "route '%s': a parameter name is letters, digits "
                         "and '_'",
                         spec);
                goto out_free;
            }
            for (size_t i = 0; i + 1 < r.n_segs; i++) {
                if (r.segs[i].param && r.segs[i].len == seg->len &&
                    memcmp(r.segs[i].text, seg->text, seg->len) == 0) {
                    snprintf(err, err_size,
                             "route '%s': parameter '%.*s' given twice", spec,
                             (int)seg->len, seg->text);
                    goto out_free;
                }
            }
            r.n_params++;
        } else {
            seg->param = false;
            seg->text = p;
            seg->len = n;
            for (size_t i = 0; i < n; i++) {
                if (p[i] == '{' || p[i] == '}') {
                    snprintf(err, err_size,
                             "route '%s': '{param}' must be a whole segment",
                             spec);
                    goto out_free;
                }
            }
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    for (size_t i = 0; i < r.service_len; i++) {
        if (!route_is_name_char(service[i])) {
            snprintf(err, err_size, "route '%s': bad service name '%s'", spec,
                     service);
            goto out_free;
        }
    }
    *out = r;
    return FERRY_OK;

out_free:
    free(r.spec);
    return FERRY_EINVALID_ARGUMENT;
}

void
route_release(struct route *r)
{
    free(r->spec);
    r->spec = NULL;
}

ferry_err
route_table_init(struct route_table *t, char *const *specs, size_t n,
                 size_t *bad, char *err, size_t err_size)
{
    ferry_err e;

    t->n = 0;
    t->v = NULL;
    if (n == 0) {
        return FERRY_OK;
    }
    t->v = calloc(n, sizeof(*t->v));
    if (t->v == NULL) {
        snprintf(err, err_size, "route: out of memory");
        return FERRY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        e = route_parse(specs[i], &t->v[t->n], err, err_size);
        if (e != FERRY_OK) {
            if (bad != NULL) {
                *bad = i;
            }
            route_table_release(t);
            return e;
        }
        t->n++;
    }
    return FERRY_OK;
}

void
route_table_release(struct route_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        route_release(&t->v[i]);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

bool
route_match(const struct route *r, const char *path, size_t len,
            struct slice *params)
{
    size_t pos = 1, k = 0;

    if (len == 0 || path[0] != '/') {
        return false;
    }
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct route_seg *seg = &r->segs[i];
        const char *slash;
        size_t n;

        if (pos > len) {
            return false;
        }
        slash = memchr(path + pos, '/', len - pos);
        n = slash != NULL ? (size_t)(slash - (path + pos)) : len - pos;
        if (seg->param) {
            if (n == 0) {
                return false;
            }
            params[k].p = (const uint8_t *)path + pos;
            params[k].len = n;
            k++;
        } else if (n != seg->len || memcmp(path + pos, seg->text, n) != 0) {
            return false;
        }
        pos += n;
        if (i + 1 == r->n_segs) {
            /* The last segment must end the path. */
            return pos == len;
        }
        if (slash == NULL) {
            return false;
        }
        pos++; /* the '/' */
    }
    return false;
}

const struct route *
route_find(const struct route_table *t, const char *method, size_t method_len,
           const char *path, size_t len, struct slice *params, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < t->n; i++) {
        const struct route *r = &t->v[i];
        if (!route_match(r, path, len, params)) {
            continue;
        }
        if (strlen(r->method) == method_len &&
            memcmp(r->method, method, method_len) == 0) {
            return r;
        }
        *path_known = true;
    }
    return NULL;
}

bool
route_is_json_number(const char *s, size_t len)
{
    size_t i = 0;

    if (i < len && s[i] == '-') {
        i++;
    }
    if (i == len || !isdigit((unsigned char)s[i])) {
        return false;
    }
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
        }
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i == len || !isdigit((unsigned char)s[i])) {
            return false;
        }
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (i == len || !isdigit((unsigned char)s[i])) {
            return false;
        }
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
        }
    }
    return i == len;
}

static int
route_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes src into dst (room for len); a '%' not followed by two
 * hex digits stays as it is. Returns the bytes written. */
static size_t
route_decode(char *dst, const char *src, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < len && (hi = route_hex(src[i + 1])) >= 0 &&
            (lo = route_hex(src[i + 2])) >= 0) {
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[n++] = src[i];
        }
    }
    return n;
}

size_t
route_payload_max(const struct route *r, size_t path_len)
{
    size_t names = 0;

    for (size_t i = 0; i < r->n_segs; i++) {
        if (r->segs[i].param) {
            names += r->segs[i].len + 4;
        }
    }
    /* Braces, names with quotes, ':' and ',', each value escaped. */
    return 2 + names + r->n_params * HTTP_JSON_ESCAPED_MAX(path_len);
}

size_t
route_payload(const struct route *r, const struct slice *params, char *dst,
              char *scratch)
{
    size_t n = 0, k = 0;

    dst[n++] = '{';
    for (size_t i = 0; i < r->n_segs; i++) {
        const struct route_seg *seg = &r->segs[i];
        const struct slice *v;
        size_t dlen;

        if (!seg->param) {
            continue;
        }
        v = &params[k++];
        if (k > 1) {
            dst[n++] = ',';
        }
        dst[n++] = '"';
        memcpy(dst + n, seg->text, seg->len);
        n += seg->len;
        dst[n++] = '"';
        dst[n++] = ':';
        dlen = route_decode(scratch, (const char *)v->p, v->len);
        if (route_is_json_number(scratch, dlen)) {
            memcpy(dst + n, scratch, dlen);
            n += dlen;
        } else {
            n += http_json_escape(dst + n, scratch, dlen);
        }
    }
    dst[n++] = '}';
    return n;
}
