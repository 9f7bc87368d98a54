/* SPDX-License-Identifier: MIT */
/*
 * fuzz_queue_path.c - libFuzzer target for the routes under /v1/queues
 * (src/http/queue_path.c), the part of the HTTP side that reads what a
 * client sends there: method, path with its query, the Ferry-Job-Token
 * and Ferry-Dedup-Id headers, and the body. The input is a flags byte
 * (bit 0: a token header follows, bit 1: a dedup header follows), then
 * "METHOD PATH\n", each header present as a line, the rest the body.
 *
 * A refusal must be 400, 404 or 405 with a message (and an Allow for
 * 405). A request accepted must be one ferry.queue's own decoder takes,
 * field for field: the HTTP side never sends the engine what it would
 * refuse, nor something other than what the client asked.
 *
 * FUZZ_SRC: src/http/queue_path.c src/queue/queue_codec.c src/proto/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/queue_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of [*p, end) (without its '\n'); false when none. */
static int
next_line(const uint8_t **p, const uint8_t *end, struct slice *line)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));

    if (nl == NULL) {
        return 0;
    }
    line->p = *p;
    line->len = (size_t)(nl - *p);
    *p = nl + 1;
    return 1;
}

static int
same(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data + 1, *end = data + size, *sp;
    struct queue_path_in in;
    struct queue_path qp;
    struct queue_req d;
    struct slice line;
    const char *allow = NULL;
    char err[QUEUE_PATH_ERR_SIZE], derr[QUEUE_CODEC_ERR_SIZE];
    uint8_t *scratch, *payload;
    size_t n;
    int st;

    if (size < 1 || !next_line(&p, end, &line)) {
        return 0;
    }
    memset(&in, 0, sizeof(in));
    sp = memchr(line.p, ' ', line.len);
    if (sp == NULL) {
        return 0;
    }
    in.method = (struct slice){line.p, (size_t)(sp - line.p)};
    in.path = (struct slice){sp + 1, line.len - (size_t)(sp - line.p) - 1};
    if ((data[0] & 1) && !next_line(&p, end, &in.token)) {
        return 0;
    }
    if ((data[0] & 2) && !next_line(&p, end, &in.dedup)) {
        return 0;
    }
    in.body = (struct slice){p, (size_t)(end - p)};
    /* Exactly the room promised, so ASan sees any write past it. */
    scratch = malloc(in.path.len + 1);
    if (scratch == NULL) {
        abort();
    }
    err[0] = '\0';
    st = queue_path_parse(&in, scratch, &qp, &allow, err);
    if (st != 0) {
        if ((st != 400 && st != 404 && st != 405) || err[0] == '\0' ||
            strlen(err) >= sizeof(err) || ((st == 405) != (allow != NULL))) {
            abort();
        }
        free(scratch);
        return 0;
    }
    n = queue_codec_write_request(NULL, &qp.r);
    payload = malloc(n);
    if (payload == NULL) {
        abort();
    }
    if (queue_codec_write_request(payload, &qp.r) != n ||
        queue_codec_decode(qp.r.queue, (struct slice){payload, n}, &d, derr) !=
            FERRY_OK) {
        abort();
    }
    if (d.op != qp.r.op || d.id != qp.r.id || d.token != qp.r.token ||
        d.priority != qp.r.priority || d.delay_ms != qp.r.delay_ms ||
        d.visibility_ms != qp.r.visibility_ms ||
        d.max_deliveries != qp.r.max_deliveries || d.wait_ms != qp.r.wait_ms ||
        !same(d.dedup, qp.r.dedup) || !same(d.queue, qp.r.queue)) {
        abort();
    }
    if (d.op == QUEUE_OP_PUSH && !same(d.payload, in.body)) {
        abort();
    }
    if (d.op == QUEUE_OP_BURY && !same(d.reason, in.body)) {
        abort();
    }
    if (d.op == QUEUE_OP_CONFIGURE && !same(d.settings, in.body)) {
        abort();
    }
    if ((d.op == QUEUE_OP_PEEK || d.op == QUEUE_OP_REDRIVE) &&
        d.which != qp.r.which) {
        abort();
    }
    free(payload);
    free(scratch);
    return 0;
}
