/* SPDX-License-Identifier: MIT */
/*
 * test_frame.c - unit tests of the frame codec (src/proto/frame.c) and the
 * error table (src/proto/errors.c).
 *
 * Every frame type is written and read back field by field; every prefix of
 * every frame is fed to the decoder from a buffer of exactly that size, so
 * AddressSanitizer catches any read past the input; each malformed body
 * must give FERRY_EPROTO; the header checks (size limit, type) must fire
 * from the header alone. Last, the recorded frames in
 * tests/vectors/frames.json (shared with every other client) are decoded,
 * parsed and re-encoded with the C codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto/frame.h"

/* ------------------------------------------------------------ helpers */

static struct slice
bytes(const void *p, size_t n)
{
    struct slice s = {p, n};
    return s;
}

/* A heap copy of exactly n bytes, so reading past it trips ASan. */
static uint8_t *
exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n > 0 ? n : 1);

    assert_non_null(q);
    if (n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

static void
assert_slice(struct slice s, const void *p, size_t n)
{
    assert_int_equal(s.len, n);
    if (n > 0) {
        assert_memory_equal(s.p, p, n);
    }
}

/* Decodes one whole frame from an exact-size copy of buf and checks the
 * decoder consumed all of it. The frame points into *keep, which the
 * caller frees. */
static struct frame
decode_whole(const uint8_t *buf, size_t n, uint8_t **keep)
{
    struct frame f;
    size_t consumed = 12345;
    uint8_t *copy = exact_copy(buf, n);

    memset(&f, 0xAA, sizeof(f));
    assert_int_equal(frame_decode(copy, n, FRAME_DEFAULT_MAX_BODY, &f,
                                  &consumed),
                     FERRY_OK);
    assert_int_equal(consumed, n);
    *keep = copy;
    return f;
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void
put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Parses f with the parser of its type; empty-bodied types are checked
 * with frame_check_empty(), REPLY always parses. */
static ferry_err
parse_any(const struct frame *f)
{
    struct frame_hello h;
    struct frame_hello_ok ho;
    struct frame_request q;
    struct frame_error e;
    struct frame_register g;

    switch (f->type) {
    case FRAME_HELLO:
        return frame_parse_hello(f, &h);
    case FRAME_HELLO_OK:
        return frame_parse_hello_ok(f, &ho);
    case FRAME_REQUEST:
        return frame_parse_request(f, &q);
    case FRAME_ERROR:
        return frame_parse_error(f, &e);
    case FRAME_REGISTER:
        return frame_parse_register(f, &g);
    case FRAME_REPLY:
        return FERRY_OK;
    default:
        return frame_check_empty(f);
    }
}

/* A set of valid frames of every type, written by the codec. */
struct sample {
    const char *what;
    uint8_t buf[2048];
    size_t len;
};

static uint8_t key_1024[FRAME_MAX_KEY];
static char name_255[FRAME_MAX_NAME + 1];

static size_t
make_samples(struct sample *s)
{
    size_t n = 0;

    memset(key_1024, 'k', sizeof(key_1024));
    memset(name_255, 'n', FRAME_MAX_NAME);
    name_255[FRAME_MAX_NAME] = '\0';

    s[n].what = "hello";
    s[n].len = frame_write_hello(s[n].buf, 1, FRAME_ROLE_WORKER, 2500, 0,
                                 slice_str("w1"), slice_str("tok"));
    n++;
    s[n].what = "hello v2";
    s[n].len = frame_write_hello(s[n].buf, 2, FRAME_ROLE_WORKER, 2500, 65536,
                                 slice_str("w1"), slice_str("tok"));
    n++;
    s[n].what = "hello max name";
    s[n].len = frame_write_hello(s[n].buf, 1, FRAME_ROLE_CALLER, 0, 0,
                                 slice_str(name_255), slice_str(name_255));
    n++;
    s[n].what = "hello_ok";
    s[n].len = frame_write_hello_ok(s[n].buf, 1, 2500, 1 << 24, 0, 0,
                                    slice_str("ferryd/0.1"));
    n++;
    s[n].what = "hello_ok v2";
    s[n].len = frame_write_hello_ok(s[n].buf, 2, 2500, 1 << 24, 60000, 5000,
                                    slice_str("ferryd/0.1"));
    n++;
    s[n].what = "request";
    s[n].len = frame_write_request(s[n].buf, 7, 0, 1000, slice_str("echo"),
                                   bytes(NULL, 0), bytes("hi", 2));
    n++;
    s[n].what = "request key";
    s[n].len = frame_write_request(s[n].buf, UINT64_MAX, FERRY_IDEMPOTENT,
                                   0, slice_str(name_255),
                                   bytes(key_1024, FRAME_MAX_KEY),
                                   bytes("payload", 7));
    n++;
    s[n].what = "reply";
    s[n].len = frame_write_reply_header(s[n].buf, 9, 3);
    memcpy(s[n].buf + s[n].len, "abc", 3);
    s[n].len += 3;
    n++;
    s[n].what = "error";
    s[n].len = frame_write_error(s[n].buf, 9, FERRY_EDEADLINE,
                                 slice_str("too late"));
    n++;
    s[n].what = "cancel";
    s[n].len = frame_write_empty(s[n].buf, FRAME_CANCEL, 9);
    n++;
    s[n].what = "register";
    s[n].len = frame_write_register(s[n].buf, 3, 65535, slice_str("fib"));
    n++;
    s[n].what = "registered";
    s[n].len = frame_write_empty(s[n].buf, FRAME_REGISTERED, 3);
    n++;
    s[n].what = "ping";
    s[n].len = frame_write_empty(s[n].buf, FRAME_PING, 0);
    n++;
    s[n].what = "drain";
    s[n].len = frame_write_empty(s[n].buf, FRAME_DRAIN, 0);
    n++;
    return n;
}

#define MAX_SAMPLES 24

/* ----------------------------------------------------------- round trip */

static void
test_roundtrip_hello(void **state)
{
    uint8_t buf[1024], *keep;
    struct frame f;
    struct frame_hello h;
    size_t n;

    (void)state;
    n = frame_write_hello(buf, 1, FRAME_ROLE_WORKER, 0xdeadbeef, 77,
                          slice_str("worker-1"), slice_str("secret"));
    assert_int_equal(n, frame_hello_size(1, 8, 6));
    assert_int_equal(n, 16 + 12 + 8 + 6);
    assert_int_equal(get_u32(buf), n - 16);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(f.type, FRAME_HELLO);
    assert_int_equal(f.flags, 0);
    assert_int_equal(f.id, 0);
    assert_int_equal(f.body.len, n - 16);
    memset(&h, 0, sizeof(h));
    assert_int_equal(frame_parse_hello(&f, &h), FERRY_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.role, FRAME_ROLE_WORKER);
    assert_int_equal(h.heartbeat_ms, 0xdeadbeef);
    assert_slice(h.name, "worker-1", 8);
    assert_slice(h.token, "secret", 6);
    /* Version 1 carries no max_frame: 77 was not written. */
    assert_int_equal(h.max_frame, 0);
    free(keep);

    /* Version 2: max_frame after the token, exactly. */
    n = frame_write_hello(buf, 2, FRAME_ROLE_CALLER, 0, 0x01020304,
                          slice_str("c"), slice_str(""));
    assert_int_equal(n, frame_hello_size(2, 1, 0));
    assert_int_equal(n, 16 + 12 + 1 + 4);
    assert_int_equal(get_u32(buf + n - 4), 0x01020304);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_hello(&f, &h), FERRY_OK);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.max_frame, 0x01020304);
    free(keep);

    /* Empty name and token, every role. */
    for (uint8_t role = FRAME_ROLE_CALLER; role <= FRAME_ROLE_PEER; role++) {
        n = frame_write_hello(buf, 65535, role, 0, 0, slice_str(""),
                              slice_str(""));
        f = decode_whole(buf, n, &keep);
        assert_int_equal(frame_parse_hello(&f, &h), FERRY_OK);
        assert_int_equal(h.version, 65535);
        assert_int_equal(h.role, role);
        assert_int_equal(h.heartbeat_ms, 0);
        assert_int_equal(h.name.len, 0);
        assert_int_equal(h.token.len, 0);
        free(keep);
    }
}

static void
test_roundtrip_hello_ok(void **state)
{
    uint8_t buf[512], *keep;
    struct frame f;
    struct frame_hello_ok h;
    size_t n;

    (void)state;
    n = frame_write_hello_ok(buf, 1, 2500, 16777216, 9, 9,
                             slice_str(name_255));
    assert_int_equal(n, frame_hello_ok_size(1, FRAME_MAX_NAME));
    assert_int_equal(n, 16 + 14 + 255);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(f.type, FRAME_HELLO_OK);
    assert_int_equal(f.id, 0);
    assert_int_equal(frame_parse_hello_ok(&f, &h), FERRY_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.heartbeat_ms, 2500);
    assert_int_equal(h.max_frame, 16777216);
    assert_int_equal(h.max_deadline_ms, 0);
    assert_int_equal(h.default_deadline_ms, 0);
    assert_slice(h.name, name_255, FRAME_MAX_NAME);
    free(keep);

    /* Version 2: the two deadlines after the name. */
    n = frame_write_hello_ok(buf, 2, 0, 1024, 60000, 5000, slice_str("d"));
    assert_int_equal(n, frame_hello_ok_size(2, 1));
    assert_int_equal(n, 16 + 14 + 1 + 8);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_hello_ok(&f, &h), FERRY_OK);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.heartbeat_ms, 0);
    assert_int_equal(h.max_frame, 1024);
    assert_int_equal(h.max_deadline_ms, 60000);
    assert_int_equal(h.default_deadline_ms, 5000);
    assert_slice(h.name, "d", 1);
    free(keep);
}

static void
test_roundtrip_request(void **state)
{
    static uint8_t buf[4096], payload[2000];
    uint8_t *keep;
    struct frame f;
    struct frame_request q;
    size_t n, i;

    (void)state;
    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i * 31);
    }
    n = frame_write_request(buf, 0x0102030405060708ull, FERRY_IDEMPOTENT,
                            12345, slice_str("svc"),
                            bytes(key_1024, FRAME_MAX_KEY),
                            bytes(payload, sizeof(payload)));
    assert_int_equal(n, frame_request_size(3, FRAME_MAX_KEY, 2000));
    assert_int_equal(n, 16 + 8 + 3 + 1024 + 2000);
    /* The id is big-endian in bytes 8..15. */
    for (i = 0; i < 8; i++) {
        assert_int_equal(buf[8 + i], i + 1);
    }
    f = decode_whole(buf, n, &keep);
    assert_int_equal(f.type, FRAME_REQUEST);
    assert_int_equal(f.flags, FERRY_IDEMPOTENT);
    assert_true(f.id == 0x0102030405060708ull);
    assert_int_equal(frame_parse_request(&f, &q), FERRY_OK);
    assert_int_equal(q.deadline_ms, 12345);
    assert_slice(q.service, "svc", 3);
    assert_slice(q.key, key_1024, FRAME_MAX_KEY);
    assert_slice(q.payload, payload, sizeof(payload));
    /* Slices point into the input, not into copies. */
    assert_ptr_equal(q.service.p, keep + 16 + 8);
    free(keep);

    /* The protocol.md example, byte for byte. */
    {
        static const uint8_t doc[] = {
            0x00, 0x00, 0x00, 0x0e, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x03, 0xe8,
            0x00, 0x04, 0x00, 0x00, 0x65, 0x63, 0x68, 0x6f, 0x68, 0x69};
        n = frame_write_request(buf, 7, 0, 1000, slice_str("echo"),
                                bytes(NULL, 0), bytes("hi", 2));
        assert_int_equal(n, sizeof(doc));
        assert_memory_equal(buf, doc, sizeof(doc));
        f = decode_whole(doc, sizeof(doc), &keep);
        assert_int_equal(frame_parse_request(&f, &q), FERRY_OK);
        assert_true(f.id == 7);
        assert_int_equal(q.deadline_ms, 1000);
        assert_slice(q.service, "echo", 4);
        assert_int_equal(q.key.len, 0);
        assert_slice(q.payload, "hi", 2);
        free(keep);
    }

    /* Empty payload, deadline 0, id 0. */
    n = frame_write_request(buf, 0, 0, 0, slice_str("x"), bytes(NULL, 0),
                            bytes(NULL, 0));
    assert_int_equal(n, 16 + 9);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_request(&f, &q), FERRY_OK);
    assert_int_equal(q.deadline_ms, 0);
    assert_slice(q.service, "x", 1);
    assert_int_equal(q.key.len, 0);
    assert_int_equal(q.payload.len, 0);
    free(keep);
}

static void
test_roundtrip_reply(void **state)
{
    uint8_t buf[64], *keep;
    struct frame f;
    size_t n;

    (void)state;
    n = frame_write_reply_header(buf, 77, 5);
    assert_int_equal(n, FRAME_HEADER_SIZE);
    memcpy(buf + n, "hello", 5);
    n += 5;
    f = decode_whole(buf, n, &keep);
    assert_int_equal(f.type, FRAME_REPLY);
    assert_int_equal(f.flags, 0);
    assert_true(f.id == 77);
    assert_slice(f.body, "hello", 5);
    free(keep);

    n = frame_write_reply_header(buf, 78, 0);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(f.type, FRAME_REPLY);
    assert_true(f.id == 78);
    assert_int_equal(f.body.len, 0);
    free(keep);
}

static void
test_roundtrip_error(void **state)
{
    static uint8_t buf[4096], msg[2000];
    uint8_t *keep;
    struct frame f;
    struct frame_error e;
    size_t n;

    (void)state;
    n = frame_write_error(buf, 5, FERRY_EWORKER_LOST, slice_str("gone"));
    assert_int_equal(n, frame_error_size(4));
    assert_int_equal(n, 16 + 4 + 4);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(f.type, FRAME_ERROR);
    assert_true(f.id == 5);
    assert_int_equal(frame_parse_error(&f, &e), FERRY_OK);
    assert_int_equal(e.code, FERRY_EWORKER_LOST);
    assert_slice(e.msg, "gone", 4);
    free(keep);

    /* Unknown codes travel unchanged: clients must print them anyway. */
    n = frame_write_error(buf, 0, 60000, slice_str(""));
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_error(&f, &e), FERRY_OK);
    assert_int_equal(e.code, 60000);
    assert_int_equal(e.msg.len, 0);
    free(keep);

    /* A message above the limit is cut to FRAME_MAX_ERRMSG bytes. */
    memset(msg, 'm', sizeof(msg));
    n = frame_write_error(buf, 1, FERRY_ESYS, bytes(msg, sizeof(msg)));
    assert_int_equal(n, frame_error_size(sizeof(msg)));
    assert_int_equal(n, 16 + 4 + FRAME_MAX_ERRMSG);
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_error(&f, &e), FERRY_OK);
    assert_int_equal(e.code, FERRY_ESYS);
    assert_slice(e.msg, msg, FRAME_MAX_ERRMSG);
    free(keep);
}

static void
test_roundtrip_register(void **state)
{
    uint8_t buf[512], *keep;
    struct frame f;
    struct frame_register g;
    size_t n;
    static const uint32_t credits[] = {1, 2, 1000, FRAME_MAX_CREDIT};

    (void)state;
    for (size_t i = 0; i < sizeof(credits) / sizeof(credits[0]); i++) {
        n = frame_write_register(buf, 100 + i, credits[i],
                                 slice_str("fib"));
        assert_int_equal(n, frame_register_size(3));
        assert_int_equal(n, 16 + 6 + 3);
        f = decode_whole(buf, n, &keep);
        assert_int_equal(f.type, FRAME_REGISTER);
        assert_true(f.id == 100 + i);
        assert_int_equal(frame_parse_register(&f, &g), FERRY_OK);
        assert_int_equal(g.credit, credits[i]);
        assert_slice(g.service, "fib", 3);
        free(keep);
    }
    n = frame_write_register(buf, 1, 1, slice_str(name_255));
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_register(&f, &g), FERRY_OK);
    assert_slice(g.service, name_255, FRAME_MAX_NAME);
    free(keep);
}

static void
test_roundtrip_empty_frames(void **state)
{
    static const uint8_t types[] = {FRAME_CANCEL, FRAME_REGISTERED,
                                    FRAME_PING, FRAME_DRAIN};
    uint8_t buf[32], *keep;
    struct frame f;
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(types); i++) {
        n = frame_write_empty(buf, types[i], 1000 + i);
        assert_int_equal(n, FRAME_HEADER_SIZE);
        assert_int_equal(get_u32(buf), 0);
        assert_int_equal(buf[4], types[i]);
        assert_int_equal(buf[5], 0);
        assert_int_equal(buf[6], 0);
        assert_int_equal(buf[7], 0);
        f = decode_whole(buf, n, &keep);
        assert_int_equal(f.type, types[i]);
        assert_true(f.id == 1000 + i);
        assert_int_equal(f.body.len, 0);
        assert_int_equal(frame_check_empty(&f), FERRY_OK);
        free(keep);
    }
}

/* Header: flags pass through, reserved bytes are ignored on receipt. */
static void
test_header_fields(void **state)
{
    uint8_t buf[32], *keep;
    struct frame f;

    (void)state;
    assert_int_equal(frame_write_header(buf, FRAME_PING, 0xff, 0, 0), 16);
    buf[6] = 0x12;
    buf[7] = 0x34;
    f = decode_whole(buf, 16, &keep);
    assert_int_equal(f.type, FRAME_PING);
    assert_int_equal(f.flags, 0xff);
    free(keep);

    frame_write_header(buf, FRAME_REPLY, 0, 0x8000000000000001ull, 0);
    assert_int_equal(buf[8], 0x80);
    assert_int_equal(buf[15], 0x01);
    f = decode_whole(buf, 16, &keep);
    assert_true(f.id == 0x8000000000000001ull);
    free(keep);
}

/* Several frames in one buffer decode one after the other. */
static void
test_decode_stream(void **state)
{
    struct sample *s = calloc(MAX_SAMPLES, sizeof(*s));
    static uint8_t all[MAX_SAMPLES * 2048];
    size_t count, i, off = 0, total = 0;
    uint8_t *copy;

    (void)state;
    assert_non_null(s);
    count = make_samples(s);
    for (i = 0; i < count; i++) {
        memcpy(all + total, s[i].buf, s[i].len);
        total += s[i].len;
    }
    copy = exact_copy(all, total);
    for (i = 0; i < count; i++) {
        struct frame f;
        size_t consumed = 0;

        assert_int_equal(frame_decode(copy + off, total - off,
                                      FRAME_DEFAULT_MAX_BODY, &f, &consumed),
                         FERRY_OK);
        assert_int_equal(consumed, s[i].len);
        assert_int_equal(f.type, s[i].buf[4]);
        assert_int_equal(parse_any(&f), FERRY_OK);
        off += consumed;
    }
    assert_int_equal(off, total);
    free(copy);
    free(s);
}

/* ----------------------------------------------------------- truncation */

/* Every prefix of every frame is "incomplete": FERRY_OK, consumed 0. */
static void
test_truncated_input_is_incomplete(void **state)
{
    struct sample *s = calloc(MAX_SAMPLES, sizeof(*s));
    size_t count, i, k;

    (void)state;
    assert_non_null(s);
    count = make_samples(s);
    for (i = 0; i < count; i++) {
        for (k = 0; k < s[i].len; k++) {
            uint8_t *copy = exact_copy(s[i].buf, k);
            struct frame f;
            size_t consumed = 999;
            ferry_err err = frame_decode(copy, k, FRAME_DEFAULT_MAX_BODY, &f,
                                         &consumed);

            if (err != FERRY_OK || consumed != 0) {
                print_error("%s: prefix %zu of %zu: err %d consumed %zu\n",
                            s[i].what, k, s[i].len, err, consumed);
            }
            assert_int_equal(err, FERRY_OK);
            assert_int_equal(consumed, 0);
            free(copy);
        }
    }
    free(s);
}

/*
 * A body cut short but with a header claiming the short length: it decodes,
 * and then its parser must fail with FERRY_EPROTO (or succeed only where the
 * short body is itself valid, e.g. a REQUEST with a shorter payload).
 */
static void
test_truncated_body_is_proto(void **state)
{
    struct sample *s = calloc(MAX_SAMPLES, sizeof(*s));
    size_t count, i, k;

    (void)state;
    assert_non_null(s);
    count = make_samples(s);
    for (i = 0; i < count; i++) {
        size_t body = s[i].len - FRAME_HEADER_SIZE;
        uint8_t type = s[i].buf[4];

        for (k = 0; k < body; k++) {
            uint8_t *copy = exact_copy(s[i].buf, FRAME_HEADER_SIZE + k);
            struct frame f;
            size_t consumed = 0;
            ferry_err err;

            put_u32(copy, (uint32_t)k);
            assert_int_equal(frame_decode(copy, FRAME_HEADER_SIZE + k,
                                          FRAME_DEFAULT_MAX_BODY, &f,
                                          &consumed),
                             FERRY_OK);
            assert_int_equal(consumed, FRAME_HEADER_SIZE + k);
            err = parse_any(&f);
            if (type == FRAME_REPLY) {
                assert_int_equal(err, FERRY_OK);
            } else if (type == FRAME_REQUEST) {
                struct frame_request q;
                size_t fixed = 8 + (size_t)(s[i].buf[20] << 8 |
                                            s[i].buf[21]) +
                               (size_t)(s[i].buf[22] << 8 | s[i].buf[23]);
                if (k >= fixed) {
                    assert_int_equal(err, FERRY_OK);
                    assert_int_equal(frame_parse_request(&f, &q), FERRY_OK);
                    assert_int_equal(q.payload.len, k - fixed);
                } else {
                    assert_int_equal(err, FERRY_EPROTO);
                }
            } else {
                if (err != FERRY_EPROTO) {
                    print_error("%s: body cut to %zu: err %d\n", s[i].what,
                                k, err);
                }
                assert_int_equal(err, FERRY_EPROTO);
            }
            free(copy);
        }
    }
    free(s);
}

/* ------------------------------------------------------ malformed bodies */

/* Decodes buf (exact copy) and returns what its parser says. */
static ferry_err
parse_bytes(const uint8_t *buf, size_t n)
{
    uint8_t *copy = exact_copy(buf, n);
    struct frame f;
    size_t consumed = 0;
    ferry_err err;

    assert_int_equal(frame_decode(copy, n, FRAME_DEFAULT_MAX_BODY, &f,
                                  &consumed),
                     FERRY_OK);
    assert_int_equal(consumed, n);
    err = parse_any(&f);
    free(copy);
    return err;
}

/* Adds one byte to the body of the frame in buf (len n); returns n + 1. */
static size_t
add_trailing(uint8_t *buf, size_t n)
{
    put_u32(buf, get_u32(buf) + 1);
    buf[n] = 0;
    return n + 1;
}

static void
test_bad_hello(void **state)
{
    uint8_t buf[1024];
    size_t n;
    const size_t H = FRAME_HEADER_SIZE;

    (void)state;
    n = frame_write_hello(buf, 1, 1, 0, 0, slice_str("abc"), slice_str("t"));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 8, 4 + 2 + 1 + 1); /* name_len past the end */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 8, 3);
    put_u16(buf + H + 13, 2); /* token_len past the end */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 13, 0xffff);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 13, 1);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* Roles outside 1..3. */
    n = frame_write_hello(buf, 1, 1, 0, 0, slice_str(""), slice_str(""));
    buf[H + 2] = 0;
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    buf[H + 2] = 4;
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    buf[H + 2] = 255;
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* A 256-byte name, all bytes present. */
    n = frame_write_hello(buf, 1, 1, 0, 0, slice_str(name_255),
                          slice_str(""));
    memmove(buf + H + 10 + 256, buf + H + 10 + 255, 2);
    buf[H + 10 + 255] = 'n';
    put_u16(buf + H + 8, 256);
    put_u32(buf, (uint32_t)(n + 1 - H));
    assert_int_equal(parse_bytes(buf, n + 1), FERRY_EPROTO);

    /* Version 2: max_frame missing, or a byte after it. */
    n = frame_write_hello(buf, 2, 1, 0, 4096, slice_str("c"), slice_str(""));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u32(buf, (uint32_t)(n - 4 - H));
    assert_int_equal(parse_bytes(buf, n - 4), FERRY_EPROTO);
    put_u32(buf, (uint32_t)(n - H));
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    /* Version 3: the same bytes after max_frame are ignored. */
    put_u16(buf + H, 3);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    /* Version 0 and 1 bodies: the version-1 layout, exactly. */
    n = frame_write_hello(buf, 0, 1, 0, 0, slice_str("c"), slice_str(""));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
}

/* Reserved fields are written as 0 and ignored on receipt. */
static void
test_reserved_ignored(void **state)
{
    uint8_t buf[256];
    size_t n;
    const size_t H = FRAME_HEADER_SIZE;

    (void)state;
    n = frame_write_hello(buf, 2, 1, 0, 0, slice_str("r"), slice_str(""));
    assert_int_equal(buf[6] | buf[7] | buf[H + 3], 0);
    buf[6] = buf[7] = 0xff;
    buf[H + 3] = 0xff;
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    n = frame_write_hello_ok(buf, 2, 0, 1024, 1, 1, slice_str("d"));
    assert_int_equal(buf[H + 2] | buf[H + 3], 0);
    buf[H + 2] = buf[H + 3] = 0xff;
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    n = frame_write_request(buf, 7, 0, 1000, slice_str("echo"),
                            bytes(NULL, 0), bytes("hi", 2));
    buf[6] = 0x12;
    buf[7] = 0x34;
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
}

static void
test_bad_hello_ok(void **state)
{
    uint8_t buf[512];
    size_t n;
    const size_t H = FRAME_HEADER_SIZE;

    (void)state;
    n = frame_write_hello_ok(buf, 1, 0, 100, 0, 0, slice_str("d"));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 12, 2);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 12, 1);
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* A 256-byte name. */
    n = frame_write_hello_ok(buf, 1, 0, 100, 0, 0, slice_str(name_255));
    buf[n] = 'n';
    put_u16(buf + H + 12, 256);
    put_u32(buf, (uint32_t)(n + 1 - H));
    assert_int_equal(parse_bytes(buf, n + 1), FERRY_EPROTO);

    /* Version 2: a deadline missing, or a byte after them. */
    n = frame_write_hello_ok(buf, 2, 0, 100, 60000, 5000, slice_str("d"));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u32(buf, (uint32_t)(n - 4 - H));
    assert_int_equal(parse_bytes(buf, n - 4), FERRY_EPROTO);
    put_u32(buf, (uint32_t)(n - H));
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H, 3);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
}

static void
test_bad_request(void **state)
{
    static uint8_t buf[4096];
    size_t n;
    const size_t H = FRAME_HEADER_SIZE;

    (void)state;
    n = frame_write_request(buf, 1, 0, 0, slice_str("echo"),
                            bytes("kk", 2), bytes("p", 1));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 4, 0); /* service_len 0 */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 4, 8); /* service_len past the end */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 4, 0xffff);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 4, 7); /* service eats the key and the payload */
    put_u16(buf + H + 6, 0);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 4, 4);
    put_u16(buf + H + 6, 4); /* key_len past the end */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 6, 0xffff);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* key_len 1025 with all bytes present. */
    n = frame_write_request(buf, 1, 0, 0, slice_str("echo"),
                            bytes(key_1024, FRAME_MAX_KEY), bytes("pp", 2));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 6, FRAME_MAX_KEY + 1);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* service_len 256 with all bytes present. */
    n = frame_write_request(buf, 1, 0, 0, slice_str(name_255),
                            bytes(NULL, 0), bytes("pp", 2));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 4, FRAME_MAX_NAME + 1);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
}

static void
test_bad_error(void **state)
{
    static uint8_t buf[4096];
    size_t n;
    const size_t H = FRAME_HEADER_SIZE;

    (void)state;
    n = frame_write_error(buf, 1, FERRY_EDEADLINE, slice_str("abc"));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 2, 4);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 2, 2); /* shorter: one trailing byte */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 2, 3);
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* msg_len 1025 with all bytes present. */
    memset(buf + H + 4, 'm', FRAME_MAX_ERRMSG + 1);
    frame_write_header(buf, FRAME_ERROR, 0, 1, 4 + FRAME_MAX_ERRMSG + 1);
    put_u16(buf + H, FERRY_EDEADLINE);
    put_u16(buf + H + 2, FRAME_MAX_ERRMSG + 1);
    assert_int_equal(parse_bytes(buf, H + 4 + FRAME_MAX_ERRMSG + 1),
                     FERRY_EPROTO);
    /* and exactly 1024 is fine. */
    frame_write_header(buf, FRAME_ERROR, 0, 1, 4 + FRAME_MAX_ERRMSG);
    put_u16(buf + H + 2, FRAME_MAX_ERRMSG);
    assert_int_equal(parse_bytes(buf, H + 4 + FRAME_MAX_ERRMSG), FERRY_OK);
}

static void
test_bad_register(void **state)
{
    uint8_t buf[512];
    size_t n;
    const size_t H = FRAME_HEADER_SIZE;

    (void)state;
    n = frame_write_register(buf, 1, 5, slice_str("fib"));
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    /* Credits outside 1..65535 are well formed: the broker refuses them
     * with INVALID_ARGUMENT (protocol.md, REGISTER). */
    put_u32(buf + H, 0);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u32(buf + H, FRAME_MAX_CREDIT + 1);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u32(buf + H, 0xffffffffu);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u32(buf + H, FRAME_MAX_CREDIT);
    assert_int_equal(parse_bytes(buf, n), FERRY_OK);
    put_u16(buf + H + 4, 4); /* service_len past the end */
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);
    put_u16(buf + H + 4, 3);
    n = add_trailing(buf, n);
    assert_int_equal(parse_bytes(buf, n), FERRY_EPROTO);

    /* service_len 0: well formed too, refused by the broker. */
    frame_write_header(buf, FRAME_REGISTER, 0, 1, 6);
    put_u32(buf + H, 1);
    put_u16(buf + H + 4, 0);
    assert_int_equal(parse_bytes(buf, H + 6), FERRY_OK);

    /* service_len 256 with all bytes present. */
    n = frame_write_register(buf, 1, 1, slice_str(name_255));
    buf[n] = 'n';
    put_u16(buf + H + 4, 256);
    put_u32(buf, (uint32_t)(n + 1 - H));
    assert_int_equal(parse_bytes(buf, n + 1), FERRY_EPROTO);
}

static void
test_bad_empty_frames(void **state)
{
    static const uint8_t types[] = {FRAME_CANCEL, FRAME_REGISTERED,
                                    FRAME_PING, FRAME_DRAIN};
    uint8_t buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(types); i++) {
        frame_write_header(buf, types[i], 0, 1, 3);
        memset(buf + 16, 0, 3);
        assert_int_equal(parse_bytes(buf, 19), FERRY_EPROTO);
    }
}

/* Each parser refuses a frame of another type, even a well-formed one. */
static void
test_parse_wrong_type(void **state)
{
    uint8_t buf[256], *keep;
    struct frame f;
    struct frame_hello h;
    struct frame_hello_ok ho;
    struct frame_request q;
    struct frame_error e;
    struct frame_register g;
    size_t n;

    (void)state;
    n = frame_write_request(buf, 1, 0, 0, slice_str("echo"), bytes(NULL, 0),
                            bytes(NULL, 0));
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_hello(&f, &h), FERRY_EPROTO);
    assert_int_equal(frame_parse_hello_ok(&f, &ho), FERRY_EPROTO);
    assert_int_equal(frame_parse_error(&f, &e), FERRY_EPROTO);
    assert_int_equal(frame_parse_register(&f, &g), FERRY_EPROTO);
    free(keep);
    n = frame_write_error(buf, 1, 1, slice_str(""));
    f = decode_whole(buf, n, &keep);
    assert_int_equal(frame_parse_request(&f, &q), FERRY_EPROTO);
    free(keep);
}

/* A failing parser leaves its out-parameter alone. */
static void
test_parse_failure_leaves_output(void **state)
{
    uint8_t buf[256], *keep;
    struct frame f;
    struct frame_request q, before;
    size_t n;

    (void)state;
    n = frame_write_request(buf, 1, 0, 0, slice_str("echo"), bytes(NULL, 0),
                            bytes(NULL, 0));
    put_u16(buf + FRAME_HEADER_SIZE + 4, 0);
    f = decode_whole(buf, n, &keep);
    memset(&q, 0x5c, sizeof(q));
    before = q;
    assert_int_equal(frame_parse_request(&f, &q), FERRY_EPROTO);
    assert_memory_equal(&q, &before, sizeof(q));
    free(keep);
}

/* --------------------------------------------------------- header checks */

static void
test_oversize_before_body(void **state)
{
    uint8_t hdr[FRAME_HEADER_SIZE], *copy;
    struct frame f;
    size_t consumed;

    (void)state;
    /* Only the header is present: the limit fires at once. */
    frame_write_header(hdr, FRAME_REQUEST, 0, 1, FRAME_DEFAULT_MAX_BODY + 1);
    copy = exact_copy(hdr, sizeof(hdr));
    assert_int_equal(frame_decode(copy, sizeof(hdr), FRAME_DEFAULT_MAX_BODY,
                                  &f, &consumed),
                     FERRY_ETOO_BIG);
    free(copy);
    frame_write_header(hdr, FRAME_REPLY, 0, 1, 0xffffffffu);
    copy = exact_copy(hdr, sizeof(hdr));
    assert_int_equal(frame_decode(copy, sizeof(hdr), FRAME_DEFAULT_MAX_BODY,
                                  &f, &consumed),
                     FERRY_ETOO_BIG);
    free(copy);

    /* Exactly the limit is allowed (and incomplete without the body). */
    frame_write_header(hdr, FRAME_REQUEST, 0, 1, FRAME_DEFAULT_MAX_BODY);
    copy = exact_copy(hdr, sizeof(hdr));
    consumed = 99;
    assert_int_equal(frame_decode(copy, sizeof(hdr), FRAME_DEFAULT_MAX_BODY,
                                  &f, &consumed),
                     FERRY_OK);
    assert_int_equal(consumed, 0);
    free(copy);

    /* A small limit: 100 passes, 101 does not. */
    {
        uint8_t buf[FRAME_HEADER_SIZE + 101];

        memset(buf, 0, sizeof(buf));
        frame_write_header(buf, FRAME_REPLY, 0, 1, 100);
        consumed = 0;
        assert_int_equal(frame_decode(buf, FRAME_HEADER_SIZE + 100, 100, &f,
                                      &consumed),
                         FERRY_OK);
        assert_int_equal(consumed, FRAME_HEADER_SIZE + 100);
        frame_write_header(buf, FRAME_REPLY, 0, 1, 101);
        assert_int_equal(frame_decode(buf, sizeof(buf), 100, &f, &consumed),
                         FERRY_ETOO_BIG);
        frame_write_header(buf, FRAME_REPLY, 0, 1, 1);
        assert_int_equal(frame_decode(buf, FRAME_HEADER_SIZE + 1, 0, &f,
                                      &consumed),
                         FERRY_ETOO_BIG);
    }
}

static void
test_unknown_types(void **state)
{
    uint8_t hdr[FRAME_HEADER_SIZE], *copy;
    struct frame f;
    size_t consumed;
    unsigned t;

    (void)state;
    for (t = 0; t < 256; t++) {
        ferry_err want = (t == 0 || t > FRAME_TYPE_MAX) ? FERRY_EUNKNOWN_TYPE
                                                         : FERRY_OK;

        frame_write_header(hdr, (uint8_t)t, 0, 0, 0);
        copy = exact_copy(hdr, sizeof(hdr));
        consumed = 77;
        assert_int_equal(frame_decode(copy, sizeof(hdr),
                                      FRAME_DEFAULT_MAX_BODY, &f, &consumed),
                         want);
        if (want == FERRY_OK) {
            assert_int_equal(consumed, FRAME_HEADER_SIZE);
            assert_int_equal(f.type, t);
        }
        free(copy);
        /* With a body not yet arrived, still known from the header. */
        frame_write_header(hdr, (uint8_t)t, 0, 0, 10);
        copy = exact_copy(hdr, sizeof(hdr));
        consumed = 77;
        assert_int_equal(frame_decode(copy, sizeof(hdr),
                                      FRAME_DEFAULT_MAX_BODY, &f, &consumed),
                         want);
        if (want == FERRY_OK) {
            assert_int_equal(consumed, 0);
        }
        free(copy);
    }
    assert_string_equal(frame_type_name(0), "UNKNOWN");
    assert_string_equal(frame_type_name(11), "UNKNOWN");
    assert_string_equal(frame_type_name(255), "UNKNOWN");
    assert_string_equal(frame_type_name(FRAME_HELLO), "HELLO");
    assert_string_equal(frame_type_name(FRAME_HELLO_OK), "HELLO_OK");
    assert_string_equal(frame_type_name(FRAME_REQUEST), "REQUEST");
    assert_string_equal(frame_type_name(FRAME_REPLY), "REPLY");
    assert_string_equal(frame_type_name(FRAME_ERROR), "ERROR");
    assert_string_equal(frame_type_name(FRAME_CANCEL), "CANCEL");
    assert_string_equal(frame_type_name(FRAME_REGISTER), "REGISTER");
    assert_string_equal(frame_type_name(FRAME_REGISTERED), "REGISTERED");
    assert_string_equal(frame_type_name(FRAME_PING), "PING");
    assert_string_equal(frame_type_name(FRAME_DRAIN), "DRAIN");
}

static void
test_request_fits(void **state)
{
    (void)state;
    assert_true(frame_request_fits(1, 0, 0, 100));
    assert_false(frame_request_fits(0, 0, 0, 100));
    assert_true(frame_request_fits(255, 1024, 0, 100000));
    assert_false(frame_request_fits(256, 0, 0, 100000));
    assert_false(frame_request_fits(1, 1025, 0, 100000));
    /* body = 8 + service + key + payload must be <= max_body. */
    assert_true(frame_request_fits(4, 0, 88, 100));
    assert_false(frame_request_fits(4, 0, 89, 100));
    assert_false(frame_request_fits(4, 10, 87, 100));
    assert_false(frame_request_fits(1, 0, SIZE_MAX - 4, 100));
}

/* ---------------------------------------------------------------- errors */

static void
test_error_names(void **state)
{
    struct {
        int code;
        const char *name;
        const char *msg;
    } table[] = {
#define ROW(name, code, msg) {code, #name, msg},
        FERRY_ERRORS(ROW)
#undef ROW
    };
    size_t n = sizeof(table) / sizeof(table[0]);

    (void)state;
    assert_int_equal(n, 26);
    assert_int_equal(FERRY__ERR_COUNT, 27);
    assert_string_equal(ferry_errname(FERRY_OK), "OK");
    assert_string_equal(ferry_strerror(FERRY_OK), "success");
    for (size_t i = 0; i < n; i++) {
        /* Codes are dense 1..26 in declaration order. */
        assert_int_equal(table[i].code, (int)i + 1);
        assert_string_equal(ferry_errname((ferry_err)table[i].code),
                            table[i].name);
        assert_string_equal(ferry_strerror((ferry_err)table[i].code),
                            table[i].msg);
    }
    /* Spot checks against protocol.md's table. */
    assert_int_equal(FERRY_EPROTO, 1);
    assert_string_equal(ferry_errname(FERRY_EDEADLINE), "DEADLINE");
    assert_int_equal(FERRY_EDEADLINE, 7);
    assert_string_equal(ferry_errname(FERRY_EWORKER_LOST), "WORKER_LOST");
    assert_int_equal(FERRY_EWORKER_LOST, 8);
    assert_string_equal(ferry_errname(FERRY_EDUPLICATE_ID), "DUPLICATE_ID");
    assert_int_equal(FERRY_EDUPLICATE_ID, 14);
    assert_string_equal(ferry_errname(FERRY_ESERVICE_DISABLED),
                        "SERVICE_DISABLED");
    assert_int_equal(FERRY_ESERVICE_DISABLED, 20);
    assert_string_equal(ferry_errname(FERRY_ESLOW_CONSUMER), "SLOW_CONSUMER");
    assert_int_equal(FERRY_ESLOW_CONSUMER, 21);
    assert_string_equal(ferry_errname(FERRY_ETIMED_OUT), "TIMED_OUT");
    assert_int_equal(FERRY_ETIMED_OUT, 22);
    assert_string_equal(ferry_errname(FERRY_ENO_SPACE), "NO_SPACE");
    assert_int_equal(FERRY_ENO_SPACE, 23);
    assert_string_equal(ferry_errname(FERRY_ENOT_MY_VBUCKET), "NOT_MY_VBUCKET");
    assert_int_equal(FERRY_ENOT_MY_VBUCKET, 24);
    assert_string_equal(ferry_errname(FERRY_EFENCED), "FENCED");
    assert_int_equal(FERRY_EFENCED, 25);
    assert_string_equal(ferry_errname(FERRY_EUNAVAILABLE), "UNAVAILABLE");
    assert_int_equal(FERRY_EUNAVAILABLE, 26);
    assert_string_equal(ferry_strerror(FERRY_EDEADLINE), "deadline exceeded");
    /* Out of range: never NULL. */
    assert_string_equal(ferry_errname((ferry_err)27), "UNKNOWN_ERROR");
    assert_string_equal(ferry_errname((ferry_err)9999), "UNKNOWN_ERROR");
    assert_string_equal(ferry_errname((ferry_err)-1), "UNKNOWN_ERROR");
    assert_string_equal(ferry_strerror((ferry_err)27), "unknown error");
    assert_string_equal(ferry_strerror((ferry_err)-5), "unknown error");
}

/* --------------------------------------------------------------- vectors */

static const char *
vectors_path(void)
{
    const char *p = getenv("FERRY_VECTORS");

    return p != NULL ? p : "tests/vectors/frames.json";
}

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h), i;

    assert_int_equal(n % 2, 0);
    assert_true(n / 2 <= cap);
    for (i = 0; i < n / 2; i++) {
        unsigned v;

        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

static const char *
jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v)) {
        fail_msg("vector field '%s' missing or not a string", key);
    }
    return json_string_value(v);
}

static json_int_t
jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v)) {
        fail_msg("vector field '%s' missing or not an integer", key);
    }
    return json_integer_value(v);
}

/* An integer field that only some vectors carry; dflt when absent. */
static json_int_t
jint_or(json_t *o, const char *key, json_int_t dflt)
{
    return json_object_get(o, key) != NULL ? jint(o, key) : dflt;
}

static struct slice
jtext(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v)) {
        fail_msg("vector field '%s' missing or not a string", key);
    }
    return bytes(json_string_value(v), json_string_length(v));
}

static uint8_t *vec_scratch;

static struct slice
jhex(json_t *o, const char *key, size_t at)
{
    size_t n = unhex(jstr(o, key), vec_scratch + at, 8192);

    return bytes(vec_scratch + at, n);
}

/*
 * Appends a vector's "trailing_hex" (bytes a version-3 HELLO or HELLO_OK
 * carries after the version-2 fields, which a receiver ignores) to the
 * frame of m bytes at out, and fixes its body_len. Returns the new size.
 */
static size_t
append_trailing(uint8_t *out, size_t m, json_t *fl)
{
    json_t *t = json_object_get(fl, "trailing_hex");
    size_t k;

    if (t == NULL) {
        return m;
    }
    k = unhex(json_string_value(t), out + m, 256);
    put_u32(out, (uint32_t)(m + k - FRAME_HEADER_SIZE));
    return m + k;
}

static uint8_t
type_of(const char *name)
{
    for (unsigned t = 1; t <= FRAME_TYPE_MAX; t++) {
        if (strcmp(frame_type_name((uint8_t)t), name) == 0) {
            return (uint8_t)t;
        }
    }
    fail_msg("unknown type name '%s'", name);
    return 0;
}

/* Checks one valid vector: decodes to its fields, and re-encoding the
 * fields gives its bytes. */
static void
check_valid_vector(json_t *v, const uint8_t *wire, size_t n)
{
    const char *name = jstr(v, "name");
    json_t *fl = json_object_get(v, "fields");
    uint8_t type = type_of(jstr(v, "type"));
    uint64_t id = strtoull(jstr(v, "id"), NULL, 10);
    uint8_t flags = (uint8_t)jint(v, "flags");
    static uint8_t out[8192];
    size_t m = 0;
    uint8_t *copy = exact_copy(wire, n);
    struct frame f;
    size_t consumed = 0;

    assert_non_null(fl);
    assert_int_equal(frame_decode(copy, n, FRAME_DEFAULT_MAX_BODY, &f,
                                  &consumed),
                     FERRY_OK);
    if (consumed != n) {
        fail_msg("%s: consumed %zu of %zu", name, consumed, n);
    }
    assert_int_equal(f.type, type);
    assert_int_equal(f.flags, flags);
    assert_true(f.id == id);

    switch (type) {
    case FRAME_HELLO: {
        struct frame_hello h;
        assert_int_equal(frame_parse_hello(&f, &h), FERRY_OK);
        assert_int_equal(h.version, jint(fl, "version"));
        assert_int_equal(h.role, jint(fl, "role"));
        assert_int_equal(h.heartbeat_ms, jint(fl, "heartbeat_ms"));
        assert_true(slice_eq(h.name, jtext(fl, "name")));
        assert_true(slice_eq(h.token, jtext(fl, "token")));
        /* max_frame is on the wire from version 2 on, and so in the
         * vector; version 1 has none. */
        assert_int_equal(h.max_frame, jint_or(fl, "max_frame", 0));
        assert_int_equal(h.version >= 2,
                         json_object_get(fl, "max_frame") != NULL);
        m = frame_write_hello(out, (uint16_t)jint(fl, "version"),
                              (uint8_t)jint(fl, "role"),
                              (uint32_t)jint(fl, "heartbeat_ms"),
                              (uint32_t)jint_or(fl, "max_frame", 0),
                              jtext(fl, "name"), jtext(fl, "token"));
        m = append_trailing(out, m, fl);
        break;
    }
    case FRAME_HELLO_OK: {
        struct frame_hello_ok h;
        assert_int_equal(frame_parse_hello_ok(&f, &h), FERRY_OK);
        assert_int_equal(h.version, jint(fl, "version"));
        assert_int_equal(h.heartbeat_ms, jint(fl, "heartbeat_ms"));
        assert_int_equal(h.max_frame, jint(fl, "max_frame"));
        assert_true(slice_eq(h.name, jtext(fl, "name")));
        assert_int_equal(h.max_deadline_ms, jint_or(fl, "max_deadline_ms", 0));
        assert_int_equal(h.default_deadline_ms,
                         jint_or(fl, "default_deadline_ms", 0));
        assert_int_equal(h.version >= 2,
                         json_object_get(fl, "max_deadline_ms") != NULL);
        m = frame_write_hello_ok(out, (uint16_t)jint(fl, "version"),
                                 (uint32_t)jint(fl, "heartbeat_ms"),
                                 (uint32_t)jint(fl, "max_frame"),
                                 (uint32_t)jint_or(fl, "max_deadline_ms", 0),
                                 (uint32_t)jint_or(fl, "default_deadline_ms",
                                                   0),
                                 jtext(fl, "name"));
        m = append_trailing(out, m, fl);
        break;
    }
    case FRAME_REQUEST: {
        struct frame_request q;
        struct slice key = jhex(fl, "key_hex", 0);
        struct slice payload = jhex(fl, "payload_hex", 8192);
        assert_int_equal(frame_parse_request(&f, &q), FERRY_OK);
        assert_int_equal(q.deadline_ms, jint(fl, "deadline_ms"));
        assert_true(slice_eq(q.service, jtext(fl, "service")));
        assert_true(slice_eq(q.key, key));
        assert_true(slice_eq(q.payload, payload));
        m = frame_write_request(out, id, flags,
                                (uint32_t)jint(fl, "deadline_ms"),
                                jtext(fl, "service"), key, payload);
        break;
    }
    case FRAME_REPLY: {
        struct slice payload = jhex(fl, "payload_hex", 0);
        assert_true(slice_eq(f.body, payload));
        m = frame_write_reply_header(out, id, (uint32_t)payload.len);
        if (payload.len > 0) {
            memcpy(out + m, payload.p, payload.len);
        }
        m += payload.len;
        break;
    }
    case FRAME_ERROR: {
        struct frame_error e;
        assert_int_equal(frame_parse_error(&f, &e), FERRY_OK);
        assert_int_equal(e.code, jint(fl, "code"));
        assert_string_equal(ferry_errname((ferry_err)e.code),
                            jstr(fl, "code_name"));
        assert_true(slice_eq(e.msg, jtext(fl, "message")));
        m = frame_write_error(out, id, (uint16_t)jint(fl, "code"),
                              jtext(fl, "message"));
        break;
    }
    case FRAME_REGISTER: {
        struct frame_register g;
        assert_int_equal(frame_parse_register(&f, &g), FERRY_OK);
        assert_int_equal(g.credit, jint(fl, "credit"));
        assert_true(slice_eq(g.service, jtext(fl, "service")));
        m = frame_write_register(out, id, (uint32_t)jint(fl, "credit"),
                                 jtext(fl, "service"));
        break;
    }
    default:
        assert_int_equal(frame_check_empty(&f), FERRY_OK);
        m = frame_write_empty(out, type, id);
        break;
    }
    if (m != n || memcmp(out, wire, n) != 0) {
        fail_msg("%s: re-encoding differs from the recorded bytes", name);
    }
    free(copy);
}

/* Checks one invalid vector: the decoder or the parser reports its error,
 * or the decoder asks for more input. */
static void
check_invalid_vector(json_t *v, const uint8_t *wire, size_t n)
{
    const char *name = jstr(v, "name");
    json_t *mb = json_object_get(v, "max_body");
    uint32_t max_body = mb != NULL ? (uint32_t)json_integer_value(mb)
                                   : FRAME_DEFAULT_MAX_BODY;
    uint8_t *copy = exact_copy(wire, n);
    struct frame f;
    size_t consumed = 4242;
    ferry_err err = frame_decode(copy, n, max_body, &f, &consumed);

    if (json_is_true(json_object_get(v, "incomplete"))) {
        if (err != FERRY_OK || consumed != 0) {
            fail_msg("%s: expected incomplete, got %s consumed %zu", name,
                     ferry_errname(err), consumed);
        }
    } else {
        const char *want = jstr(v, "error");

        if (err == FERRY_OK) {
            if (consumed != n) {
                fail_msg("%s: consumed %zu of %zu", name, consumed, n);
            }
            err = parse_any(&f);
        }
        if (strcmp(ferry_errname(err), want) != 0) {
            fail_msg("%s: expected %s, got %s", name, want,
                     ferry_errname(err));
        }
    }
    free(copy);
}

static void
test_vectors(void **state)
{
    json_error_t jerr;
    json_t *root = json_load_file(vectors_path(), 0, &jerr);
    json_t *frames, *v;
    size_t i, valid = 0, invalid = 0;
    static uint8_t wire[8192];
    bool saw_doc = false;

    (void)state;
    if (root == NULL) {
        fail_msg("cannot load %s: %s (line %d)", vectors_path(), jerr.text,
                 jerr.line);
    }
    vec_scratch = malloc(2 * 8192);
    assert_non_null(vec_scratch);
    assert_int_equal(jint(root, "version"), FERRY_PROTOCOL_VERSION);
    assert_int_equal(jint(root, "max_body"), FRAME_DEFAULT_MAX_BODY);
    frames = json_object_get(root, "frames");
    assert_true(json_is_array(frames));
    json_array_foreach(frames, i, v) {
        size_t n = unhex(jstr(v, "hex"), wire, sizeof(wire));

        if (json_object_get(v, "type") != NULL) {
            check_valid_vector(v, wire, n);
            valid++;
            if (strcmp(jstr(v, "name"), "request_doc_example") == 0) {
                saw_doc = true;
            }
        } else {
            check_invalid_vector(v, wire, n);
            invalid++;
        }
    }
    /* Every type is covered, and the file is not trivially small. */
    for (unsigned t = 1; t <= FRAME_TYPE_MAX; t++) {
        bool found = false;
        json_array_foreach(frames, i, v) {
            json_t *ty = json_object_get(v, "type");
            if (ty != NULL && strcmp(json_string_value(ty),
                                     frame_type_name((uint8_t)t)) == 0) {
                found = true;
            }
        }
        if (!found) {
            fail_msg("no vector of type %s", frame_type_name((uint8_t)t));
        }
    }
    assert_true(saw_doc);
    assert_true(valid >= 20);
    assert_true(invalid >= 30);
    free(vec_scratch);
    json_decref(root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_hello),
        cmocka_unit_test(test_roundtrip_hello_ok),
        cmocka_unit_test(test_roundtrip_request),
        cmocka_unit_test(test_roundtrip_reply),
        cmocka_unit_test(test_roundtrip_error),
        cmocka_unit_test(test_roundtrip_register),
        cmocka_unit_test(test_roundtrip_empty_frames),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_decode_stream),
        cmocka_unit_test(test_truncated_input_is_incomplete),
        cmocka_unit_test(test_truncated_body_is_proto),
        cmocka_unit_test(test_bad_hello),
        cmocka_unit_test(test_bad_hello_ok),
        cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_bad_error),
        cmocka_unit_test(test_bad_register),
        cmocka_unit_test(test_reserved_ignored),
        cmocka_unit_test(test_bad_empty_frames),
        cmocka_unit_test(test_parse_wrong_type),
        cmocka_unit_test(test_parse_failure_leaves_output),
        cmocka_unit_test(test_oversize_before_body),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_request_fits),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_vectors),
    };

    memset(name_255, 'n', FRAME_MAX_NAME);
    name_255[FRAME_MAX_NAME] = '\0';
    memset(key_1024, 'k', sizeof(key_1024));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
