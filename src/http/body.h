/* SPDX-License-Identifier: MIT */
/*
 * body.h - big answers sent in slices: an h2o generator that renders the
 * next slice of a document (render.h) each time h2o has taken the last
 * one (its proceed callback), so the loop never holds more than one
 * slice's work for one answer, and a client that reads slowly holds one
 * slice of memory, not the whole document. The answer has no
 * Content-Length (HTTP/1.1: chunked). A client that takes nothing of a
 * slice for http_stall_timeout_ms loses its connection (server.h).
 */
#ifndef FERRY_HTTP_BODY_H
#define FERRY_HTTP_BODY_H

#include <h2o.h>

#include "http/render.h"

struct http_server;

/*
 * Answers req (GET; HEAD gets the head alone) with status 200 and doc,
 * rendered a slice per loop turn. Out of memory before the first slice
 * is a 500; later the answer is cut (h2o's error state). Returns 0, as an
 * h2o handler does for a request it answers.
 */
int http_body_send(struct http_server *s, h2o_req_t *req,
                   enum render_doc doc);

#endif
