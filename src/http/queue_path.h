/* SPDX-License-Identifier: MIT */
/*
 * queue_path.h - what a request under /v1/queues asks of ferry.queue:
 * its method, path, query, the two headers it may carry and its body,
 * parsed into the one request of docs/queues.md it stands for (a struct
 * queue_req ready for queue_codec_write_request()), or refused with the
 * HTTP status and a message saying what is wrong. Parsing only, no I/O
 * and no allocation, so the unit test and the fuzz target
 * (tests/fuzz/fuzz_queue_path.c) drive it directly; queue_routes.c makes
 * the call. The routes are in docs/http.md.
 */
#ifndef FERRY_HTTP_QUEUE_PATH_H
#define FERRY_HTTP_QUEUE_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"
#include "queue/queue_codec.h"

#define QUEUE_PATH_PREFIX "/v1/queues"
#define QUEUE_PATH_ERR_SIZE 256 /* room for a refusal's message */

/* The request as h2o has it; slices borrowed. */
struct queue_path_in {
    struct slice method; /* GET, POST ... */
    struct slice path;   /* from "/v1/queues", with the query string */
    struct slice body;   /* the request body (p may be NULL when empty) */
    struct slice token;  /* Ferry-Job-Token, p NULL when absent */
    struct slice dedup;  /* Ferry-Dedup-Id, p NULL when absent */
};

/* A parsed request; slices borrow the input and the scratch. */
struct queue_path {
    struct queue_req r; /* op, queue (the routing key) and fields */
    bool json;          /* RESERVE ?format=json: the job as JSON */
    bool settings;      /* GET .../settings: the settings of STATS */
    bool head;          /* HEAD: answered like GET, without the body */
};

/*
 * Parses in into *out. scratch has room for in->path.len bytes (the
 * percent-decoded queue name and dedup id live there). Returns 0 when
 * *out is filled, else the HTTP status of the refusal: 400 (a bad name,
 * id, token, query parameter or body), 404 (no such route) or 405 (a
 * route of another method; *allow then names the methods it takes), with
 * err saying why (at least QUEUE_PATH_ERR_SIZE bytes). *out is written
 * only on success; *allow only for 405.
 */
int queue_path_parse(const struct queue_path_in *in, uint8_t *scratch,
                     struct queue_path *out, const char **allow, char *err);

#endif
