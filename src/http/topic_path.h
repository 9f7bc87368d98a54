/* SPDX-License-Identifier: MIT */
/*
 * topic_path.h - what a request under /v1/topics asks of ferry.topic: a
 * publish (POST /v1/topics/{subject}) or a stream of Server-Sent Events
 * (GET /v1/topics/{pattern}/stream with its query), parsed from the
 * method and the path, or refused with the HTTP status and a message
 * saying what is wrong. Parsing only, no I/O and no allocation, so the
 * unit test and the fuzz target (tests/fuzz/fuzz_topic_path.c) drive it
 * directly; topic_routes.c makes the calls. The routes are in
 * docs/http.md.
 */
#ifndef FERRY_HTTP_TOPIC_PATH_H
#define FERRY_HTTP_TOPIC_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"

#define TOPIC_PATH_PREFIX "/v1/topics"
#define TOPIC_PATH_ERR_SIZE 256 /* room for a refusal's message */

/* The stream's keepalive comment when idle, and its bounds (ms). */
#define TOPIC_PATH_KEEPALIVE_DEFAULT 15000
#define TOPIC_PATH_KEEPALIVE_MIN 1000
#define TOPIC_PATH_KEEPALIVE_MAX 300000

enum topic_path_route {
    TOPIC_PATH_PUBLISH = 1, /* POST /v1/topics/{subject} */
    TOPIC_PATH_STREAM = 2,  /* GET /v1/topics/{pattern}/stream */
};

/* A parsed request; slices borrow the caller's scratch. */
struct topic_path {
    uint8_t route;         /* enum topic_path_route */
    struct slice name;     /* the subject (PUBLISH) or pattern (STREAM),
                              percent-decoded and valid */
    struct slice group;    /* STREAM: empty = none */
    uint32_t max_pending;  /* STREAM: 1 to TOPIC_PENDING_MAX */
    uint8_t policy;        /* STREAM: enum topic_policy */
    bool base64;           /* STREAM: every payload as base64 */
    uint32_t keepalive_ms; /* STREAM: a comment after this long idle */
};

/*
 * Parses method and path (from "/v1/topics", with its query string) into
 * *out. scratch has room for path.len bytes (the percent-decoded name and
 * group live there). Returns 0 when *out is filled, else the HTTP status
 * of the refusal: 400 (a bad subject, pattern or query parameter), 404
 * (no such route) or 405 (a route of another method; *allow then names
 * the method it takes), with err saying why (at least
 * TOPIC_PATH_ERR_SIZE bytes). *out is written only on success; *allow
 * only for 405.
 *
 * A subject under "ferry." passes here: ferry.topic itself refuses to
 * publish it, with its own message.
 */
int topic_path_parse(struct slice method, struct slice path, uint8_t *scratch,
                     struct topic_path *out, const char **allow, char *err);

#endif
