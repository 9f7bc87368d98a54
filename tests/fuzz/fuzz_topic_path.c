/* SPDX-License-Identifier: MIT */
/*
 * fuzz_topic_path.c - libFuzzer target for the routes under /v1/topics
 * (src/http/topic_path.c), the part of the HTTP side that reads what a
 * client sends there: the method and the path with its query. The input
 * is "METHOD PATH\n", the rest the body of a publish.
 *
 * A refusal must be 400, 404 or 405 with a message (and an Allow for
 * 405). A request accepted must be one ferry.topic's own decoder takes,
 * field for field (a SUBSCRIBE of the pattern for a stream, a PUBLISH of
 * the body for a publish: refused only for a subject under "ferry.",
 * which the service keeps for itself), and every bound the stream's
 * query has must hold: the HTTP side never sends the engine what it
 * would refuse, nor something other than what the client asked.
 *
 * FUZZ_SRC: src/http/topic_path.c src/topic/topic_codec.c src/topic/trie.c
 * FUZZ_SRC: src/core/map.c src/proto/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/topic_path.h"
#include "topic/topic_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size, *nl, *sp;
    struct slice method, path, body;
    struct topic_path tp;
    struct topic_req r, d;
    const char *allow = NULL;
    char err[TOPIC_PATH_ERR_SIZE], derr[TOPIC_CODEC_ERR_SIZE];
    uint8_t *scratch, *payload;
    ferry_err e;
    size_t n;
    int st;

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }
    sp = memchr(data, ' ', (size_t)(nl - data));
    if (sp == NULL) {
        return 0;
    }
    method = (struct slice){data, (size_t)(sp - data)};
    path = (struct slice){sp + 1, (size_t)(nl - sp - 1)};
    body = (struct slice){nl + 1, (size_t)(end - nl - 1)};
    /* Exactly the room promised, so ASan sees any write past it. */
    scratch = malloc(path.len + 1);
    if (scratch == NULL) {
        abort();
    }
    err[0] = '\0';
    st = topic_path_parse(method, path, scratch, &tp, &allow, err);
    if (st != 0) {
        if ((st != 400 && st != 404 && st != 405) || err[0] == '\0' ||
            strlen(err) >= sizeof(err) || ((st == 405) != (allow != NULL))) {
            abort();
        }
        free(scratch);
        return 0;
    }
    memset(&r, 0, sizeof(r));
    if (tp.route == TOPIC_PATH_PUBLISH) {
        r.op = TOPIC_OP_PUBLISH;
        r.message = body;
    } else if (tp.route == TOPIC_PATH_STREAM) {
        if (tp.max_pending < 1 || tp.max_pending > TOPIC_PENDING_MAX ||
            tp.policy > TOPIC_POLICY_CLOSE ||
            tp.keepalive_ms < TOPIC_PATH_KEEPALIVE_MIN ||
            tp.keepalive_ms > TOPIC_PATH_KEEPALIVE_MAX ||
            tp.group.len > TOPIC_GROUP_MAX) {
            abort();
        }
        r.op = TOPIC_OP_SUBSCRIBE;
        r.group = tp.group;
        r.max_pending = tp.max_pending;
        r.policy = tp.policy;
    } else {
        abort();
    }
    n = topic_codec_write_request(NULL, &r);
    payload = malloc(n);
    if (payload == NULL) {
        abort();
    }
    if (topic_codec_write_request(payload, &r) != n) {
        abort();
    }
    e = topic_codec_decode(tp.name, (struct slice){payload, n}, &d, derr);
    if (e != FERRY_OK) {
        /* Only ferryd's own subjects, which the service refuses itself. */
        if (r.op != TOPIC_OP_PUBLISH || !topic_subject_is_reserved(tp.name)) {
            abort();
        }
    } else if (d.op != r.op ||
               (r.op == TOPIC_OP_PUBLISH &&
                (!same(d.subject, tp.name) || !same(d.message, body))) ||
               (r.op == TOPIC_OP_SUBSCRIBE &&
                (!same(d.pattern, tp.name) || !same(d.group, tp.group) ||
                 d.max_pending != tp.max_pending || d.policy != tp.policy))) {
        abort();
    }
    free(payload);
    free(scratch);
    return 0;
}
