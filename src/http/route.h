/* SPDX-License-Identifier: MIT */
/*
 * route.h - the REST routes of the gateway: `METHOD /path/{param} service`
 * maps a method and a path template to a service; the request payload is a
 * JSON object of the path parameters. Parsing and matching only, no I/O,
 * so the unit test drives it directly.
 */
#ifndef FERRY_HTTP_ROUTE_H
#define FERRY_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "ferry.h"
#include "proto/frame.h"

#define ROUTE_MAX_SEGS 16   /* path segments of a template */
#define ROUTE_MAX_METHOD 15 /* bytes of a method name */

/* One segment of a template: literal text or a {param}. */
struct route_seg {
    const char *text; /* borrowed from route->spec: literal or param name */
    size_t len;       /* bytes of text */
    bool param;       /* a {param} segment */
};

/* One parsed route; owned by its table. */
struct route {
    char *spec;                            /* owned copy, cut in pieces */
    char method[ROUTE_MAX_METHOD + 1];     /* GET, POST, ... */
    const char *service;                   /* borrowed from spec */
    size_t service_len;                    /* bytes of service */
    size_t n_segs;                         /* entries in segs */
    size_t n_params;                       /* param segments */
    struct route_seg segs[ROUTE_MAX_SEGS]; /* the template */
};

/* Owned by the HTTP server. */
struct route_table {
    struct route *v; /* owned array */
    size_t n;        /* routes in v */
};

/*
 * Parses "METHOD /path/{param} service". On FERRY_EINVALID_ARGUMENT err
 * says what is wrong. *out is written only on success; route_release()
 * frees it.
 */
ferry_err route_parse(const char *spec, struct route *out, char *err,
                      size_t err_size);
void route_release(struct route *r);

/* Parses every spec into t; on error t is left empty, err is set and
 * *bad (when not NULL) is the index of the spec refused. */
ferry_err route_table_init(struct route_table *t, char *const *specs, size_t n,
                           size_t *bad, char *err, size_t err_size);
void route_table_release(struct route_table *t);

/*
 * Whether path (without query string) fits r's template; params (room for
 * ROUTE_MAX_SEGS) get the raw, still percent-encoded values in template
 * order.
 */
bool route_match(const struct route *r, const char *path, size_t len,
                 struct slice *params);

/*
 * Finds the route for method and path. Returns the route, or NULL with
 * *path_known true when some route has this path but another method.
 */
const struct route *route_find(const struct route_table *t, const char *method,
                               size_t method_len, const char *path, size_t len,
                               struct slice *params, bool *path_known);

/* Room route_payload() needs for a path of len bytes. */
size_t route_payload_max(const struct route *r, size_t path_len);

/*
 * Writes the JSON object of the parameters into dst (room for
 * route_payload_max()): each value percent-decoded (into scratch, room for
 * the path's length), then a JSON number when it is a valid JSON number,
 * else an escaped JSON string. Returns the bytes written.
 */
size_t route_payload(const struct route *r, const struct slice *params,
                     char *dst, char *scratch);

/* Whether s[0..len) is a number in JSON's grammar. */
bool route_is_json_number(const char *s, size_t len);

#endif
