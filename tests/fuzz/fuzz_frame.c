/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame.c - libFuzzer target for the frame codec, the first code to
 * touch every byte a peer sends.
 *
 * The input is treated as a connection's byte stream: frames are decoded
 * one after another as ferryd's read loop does, each with the parser of its
 * type. Whatever a parser accepts is written back with the codec's writers
 * and must decode and parse to the same fields (the writer may normalise
 * reserved bytes and flags, so fields are compared, not bytes). An input
 * starting with 0xfe uses its second byte as the maximum body size and the
 * rest as the stream, so the TOO_BIG path is reached as often as others.
 *
 * FUZZ_SRC: src/proto/frame.c src/proto/errors.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

static uint8_t out[FRAME_HEADER_SIZE + 64 * 1024];

static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}

/* Decodes the single frame in buf[0..n) (written by a writer). */
static struct frame
redecode(const uint8_t *buf, size_t n)
{
    struct frame f;
    size_t consumed = 0;

    check(frame_decode(buf, n, UINT32_MAX, &f, &consumed) == FERRY_OK);
    check(consumed == n);
    return f;
}

static void
roundtrip(const struct frame *f)
{
    size_t n;
    struct frame g;

    switch (f->type) {
    case FRAME_HELLO: {
        struct frame_hello a, b;
        if (frame_parse_hello(f, &a) != FERRY_OK) {
            return;
        }
        n = frame_write_hello(out, a.version, a.role, a.heartbeat_ms,
                              a.max_frame, a.name, a.token);
        check(n == frame_hello_size(a.version, a.name.len, a.token.len));
        g = redecode(out, n);
        check(frame_parse_hello(&g, &b) == FERRY_OK);
        check(a.version == b.version && a.role == b.role &&
              a.heartbeat_ms == b.heartbeat_ms &&
              a.max_frame == b.max_frame && slice_eq(a.name, b.name) &&
              slice_eq(a.token, b.token));
        /* Version 3 and up may carry bytes that are ignored. */
        check(a.version > FRAME_VERSION_2
                  ? n <= f->body.len + FRAME_HEADER_SIZE
                  : n == f->body.len + FRAME_HEADER_SIZE);
        break;
    }
    case FRAME_HELLO_OK: {
        struct frame_hello_ok a, b;
        if (frame_parse_hello_ok(f, &a) != FERRY_OK) {
            return;
        }
        n = frame_write_hello_ok(out, a.version, a.heartbeat_ms, a.max_frame,
                                 a.max_deadline_ms, a.default_deadline_ms,
                                 a.name);
        g = redecode(out, n);
        check(frame_parse_hello_ok(&g, &b) == FERRY_OK);
        check(a.version == b.version && a.heartbeat_ms == b.heartbeat_ms &&
              a.max_frame == b.max_frame &&
              a.max_deadline_ms == b.max_deadline_ms &&
              a.default_deadline_ms == b.default_deadline_ms &&
              slice_eq(a.name, b.name));
        check(a.version > FRAME_VERSION_2
                  ? n <= f->body.len + FRAME_HEADER_SIZE
                  : n == f->body.len + FRAME_HEADER_SIZE);
        break;
    }
    case FRAME_REQUEST: {
        struct frame_request a, b;
        if (frame_parse_request(f, &a) != FERRY_OK) {
            return;
        }
        check(a.service.len >= 1 && a.service.len <= FRAME_MAX_NAME);
        check(a.key.len <= FRAME_MAX_KEY);
        check(a.payload.p + a.payload.len == f->body.p + f->body.len);
        if (frame_request_size(a.service.len, a.key.len, a.payload.len) >
            sizeof(out)) {
            return;
        }
        n = frame_write_request(out, f->id, f->flags, a.deadline_ms,
                                a.service, a.key, a.payload);
        check(n == f->body.len + FRAME_HEADER_SIZE);
        check(memcmp(out + FRAME_HEADER_SIZE, f->body.p, f->body.len) == 0);
        g = redecode(out, n);
        check(g.id == f->id && g.flags == f->flags);
        check(frame_parse_request(&g, &b) == FERRY_OK);
        check(a.deadline_ms == b.deadline_ms &&
              slice_eq(a.service, b.service) && slice_eq(a.key, b.key) &&
              slice_eq(a.payload, b.payload));
        break;
    }
    case FRAME_ERROR: {
        struct frame_error a, b;
        if (frame_parse_error(f, &a) != FERRY_OK) {
            return;
        }
        check(a.msg.len <= FRAME_MAX_ERRMSG);
        n = frame_write_error(out, f->id, a.code, a.msg);
        check(n == f->body.len + FRAME_HEADER_SIZE);
        g = redecode(out, n);
        check(frame_parse_error(&g, &b) == FERRY_OK);
        check(a.code == b.code && slice_eq(a.msg, b.msg) && g.id == f->id);
        break;
    }
    case FRAME_REGISTER: {
        struct frame_register a, b;
        if (frame_parse_register(f, &a) != FERRY_OK) {
            return;
        }
        /* Any credit and a 0..255-byte name parse: the broker, not the
         * codec, refuses credit 0 or above FRAME_MAX_CREDIT and an empty
         * name (protocol.md, REGISTER). */
        check(a.service.len <= FRAME_MAX_NAME);
        n = frame_write_register(out, f->id, a.credit, a.service);
        check(n == f->body.len + FRAME_HEADER_SIZE);
        g = redecode(out, n);
        check(frame_parse_register(&g, &b) == FERRY_OK);
        check(a.credit == b.credit && slice_eq(a.service, b.service));
        break;
    }
    case FRAME_REPLY:
        if (f->body.len + FRAME_HEADER_SIZE > sizeof(out)) {
            return;
        }
        n = frame_write_reply_header(out, f->id, (uint32_t)f->body.len);
        if (f->body.len > 0) {
            memcpy(out + n, f->body.p, f->body.len);
        }
        g = redecode(out, n + f->body.len);
        check(g.type == FRAME_REPLY && g.id == f->id &&
              slice_eq(g.body, f->body));
        break;
    default:
        if (frame_check_empty(f) != FERRY_OK) {
            return;
        }
        n = frame_write_empty(out, f->type, f->id);
        g = redecode(out, n);
        check(g.type == f->type && g.id == f->id && g.body.len == 0);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t max_body = FRAME_DEFAULT_MAX_BODY;
    size_t off = 0;
    uint8_t *copy;

    if (size >= 2 && data[0] == 0xfe) {
        max_body = data[1];
        off = 2;
    }
    /* An exact-size heap copy: any read past the end is caught. */
    copy = malloc(size > 0 ? size : 1);
    check(copy != NULL);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    while (off < size) {
        struct frame f;
        size_t consumed = 0;
        ferry_err err = frame_decode(copy + off, size - off, max_body, &f,
                                     &consumed);

        if (err != FERRY_OK) {
            check(err == FERRY_ETOO_BIG || err == FERRY_EUNKNOWN_TYPE);
            break;
        }
        if (consumed == 0) {
            break;
        }
        check(consumed >= FRAME_HEADER_SIZE && consumed <= size - off);
        check(f.type >= 1 && f.type <= FRAME_TYPE_MAX);
        check(f.body.len == consumed - FRAME_HEADER_SIZE);
        check(f.body.len <= max_body);
        check(f.body.p == copy + off + FRAME_HEADER_SIZE);
        roundtrip(&f);
        off += consumed;
    }
    free(copy);
    return 0;
}
