/* SPDX-License-Identifier: MIT */
/*
 * respond.h - the one way every HTTP handler of ferryd answers: a whole
 * body copied into the request's pool with its Content-Length, or a JSON
 * error carrying the ferry error's name, code and message with the HTTP
 * status that error maps to (docs/http.md has the table).
 */
#ifndef FERRY_HTTP_RESPOND_H
#define FERRY_HTTP_RESPOND_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>

#include "ferry.h"

/*
 * Sends a final response: copies body into req->pool, sets Content-Type
 * (when content_type is not NULL) and Content-Length. A response started
 * with the caller's own generator (nothing sent yet) is finished here.
 */
void http_respond(h2o_req_t *req, int status, const char *content_type,
                  const void *body, size_t len);

/* http_respond() with Content-Type application/json. */
void http_respond_json(h2o_req_t *req, int status, const char *json,
                       size_t len);

/*
 * Sends {"error":"NAME","code":N,"message":"..."} with the HTTP status of
 * code (http_status_of); adds Retry-After: 1 to 503 answers. message may
 * be NULL for the error's standard text; it is JSON-escaped.
 */
void http_respond_error(h2o_req_t *req, ferry_err code, const char *message);

/*
 * Same shape for answers that are no ferry error (no such path, wrong
 * method): {"error":name,"code":0,"message":message} with status.
 */
void http_respond_status(h2o_req_t *req, int status, const char *name,
                         const char *message);

/* The HTTP status a ferry error is answered with (200 for FERRY_OK). */
int http_status_of(ferry_err code);

/* Whether src[0..len) is valid UTF-8 (no overlong forms, surrogates or
 * values past U+10FFFF). */
bool http_is_utf8(const void *src, size_t len);

/* Room http_json_escape() needs for len bytes of input. */
#define HTTP_JSON_ESCAPED_MAX(len) (6 * (len) + 2)

/*
 * Writes src as a quoted JSON string into dst (room for
 * HTTP_JSON_ESCAPED_MAX(len)); invalid UTF-8 becomes U+FFFD. Returns the
 * bytes written.
 */
size_t http_json_escape(char *dst, const void *src, size_t len);

#endif
