/* SPDX-License-Identifier: MIT */
/*
 * gen_vectors.c - writes tests/vectors/frames.json, the recorded frames
 * that every ferry client (C, Python, Node, PHP) replays.
 *
 * It was run once; the JSON file it wrote is the reference and is checked
 * in. Valid frames are written with the C codec's writers; invalid frames
 * are valid ones with bytes patched by hand, each labelled with the error
 * a receiver must report. The protocol.md example is among them, so the
 * file and the document can be compared byte for byte. Regenerate only
 * when the protocol changes, and review the diff:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/vectors/gen_vectors.c \
 *       src/proto/frame.c src/proto/errors.c -ljansson -o /tmp/gen_vectors &&
 *   /tmp/gen_vectors > tests/vectors/frames.json
 *
 * Format: {"version": 2, "max_body": N, "frames": [...]}; "version" is the
 * highest protocol version the file covers. Each entry has a
 * "name" and "hex" (the whole frame). A valid entry also has "type" (the
 * type's name), "flags", "id" (a decimal string: ids use all 64 bits) and
 * "fields", the body's fields: text fields (name, token, service, message)
 * as JSON strings, opaque ones (key, payload) as "key_hex" / "payload_hex",
 * ERROR's code as "code" with its name as "code_name". HELLO carries
 * "max_frame" and HELLO_OK "max_deadline_ms" and "default_deadline_ms"
 * only when their version is 2 or more, as on the wire. A version-3 HELLO
 * or HELLO_OK may have "trailing_hex": bytes after the version-2 fields
 * that a parser ignores (they are not a parsed field) and that an encoder
 * appends to reproduce the recorded bytes. An
 * invalid entry has "error" (the error name a receiver reports, from
 * decoding or from parsing the body) or "incomplete": true (the bytes are
 * a frame's prefix: a decoder must ask for more and consume nothing), and
 * optionally "max_body" when the check uses a smaller limit.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

static json_t *frames;

static char *
hex_of(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);
    size_t i;

    if (s == NULL) {
        abort();
    }
    for (i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

static void
set_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
    char *h = hex_of(p, n);

    json_object_set_new(o, key, json_string(h));
    free(h);
}

static void
set_str(json_t *o, const char *key, struct slice s)
{
    json_object_set_new(o, key, json_stringn((const char *)s.p, s.len));
}

/* A valid entry; its body's fields go in the object returned by body(). */
static json_t *
entry(const char *name, uint8_t type, uint8_t flags, uint64_t id)
{
    json_t *o = json_object();
    char idbuf[32];

    snprintf(idbuf, sizeof(idbuf), "%" PRIu64, id);
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "type", json_string(frame_type_name(type)));
    json_object_set_new(o, "flags", json_integer(flags));
    json_object_set_new(o, "id", json_string(idbuf));
    json_object_set_new(o, "fields", json_object());
    return o;
}

static json_t *
body(json_t *o)
{
    return json_object_get(o, "fields");
}

static void
add(json_t *o, const uint8_t *buf, size_t n)
{
    set_hex(o, "hex", buf, n);
    json_array_append_new(frames, o);
}

static void
add_invalid(const char *name, const uint8_t *buf, size_t n,
            const char *error, uint32_t max_body)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", json_string(name));
    if (error != NULL) {
        json_object_set_new(o, "error", json_string(error));
    } else {
        json_object_set_new(o, "incomplete", json_true());
    }
    if (max_body != 0) {
        json_object_set_new(o, "max_body", json_integer(max_body));
    }
    set_hex(o, "hex", buf, n);
    json_array_append_new(frames, o);
}

static uint8_t buf[4096];

/* Appends trailing bytes (a version-3 frame's additions) to the frame of
 * n bytes in buf and records them; returns the new size. */
static size_t
trailing(json_t *o, size_t n, struct slice t)
{
    uint32_t body_len;

    if (t.len == 0) {
        return n;
    }
    memcpy(buf + n, t.p, t.len);
    body_len = (uint32_t)(n + t.len - FRAME_HEADER_SIZE);
    buf[0] = (uint8_t)(body_len >> 24);
    buf[1] = (uint8_t)(body_len >> 16);
    buf[2] = (uint8_t)(body_len >> 8);
    buf[3] = (uint8_t)body_len;
    set_hex(body(o), "trailing_hex", t.p, t.len);
    return n + t.len;
}

/* A HELLO; max_frame is on the wire (and in the fields) from version 2,
 * extra only from version 3. */
static void
hello(const char *name, uint16_t version, uint8_t role, uint32_t hb,
      uint32_t max_frame, const char *cname, const char *token,
      struct slice extra)
{
    size_t n = frame_write_hello(buf, version, role, hb, max_frame,
                                 slice_str(cname), slice_str(token));
    json_t *o = entry(name, FRAME_HELLO, 0, 0);

    json_object_set_new(body(o), "version", json_integer(version));
    json_object_set_new(body(o), "role", json_integer(role));
    json_object_set_new(body(o), "heartbeat_ms", json_integer(hb));
    set_str(body(o), "name", slice_str(cname));
    set_str(body(o), "token", slice_str(token));
    if (version >= FRAME_VERSION_2) {
        json_object_set_new(body(o), "max_frame", json_integer(max_frame));
    }
    n = trailing(o, n, extra);
    add(o, buf, n);
}

/* A HELLO_OK; the deadlines are on the wire from version 2. */
static void
hello_ok(const char *name, uint16_t version, uint32_t hb, uint32_t max_frame,
         uint32_t max_deadline, uint32_t default_deadline, const char *dname,
         struct slice extra)
{
    size_t n = frame_write_hello_ok(buf, version, hb, max_frame, max_deadline,
                                    default_deadline, slice_str(dname));
    json_t *o = entry(name, FRAME_HELLO_OK, 0, 0);

    json_object_set_new(body(o), "version", json_integer(version));
    json_object_set_new(body(o), "heartbeat_ms", json_integer(hb));
    json_object_set_new(body(o), "max_frame", json_integer(max_frame));
    set_str(body(o), "name", slice_str(dname));
    if (version >= FRAME_VERSION_2) {
        json_object_set_new(body(o), "max_deadline_ms",
                            json_integer(max_deadline));
        json_object_set_new(body(o), "default_deadline_ms",
                            json_integer(default_deadline));
    }
    n = trailing(o, n, extra);
    add(o, buf, n);
}

static void
request(const char *name, uint64_t id, uint8_t flags, uint32_t deadline,
        const char *service, struct slice key, struct slice payload)
{
    size_t n = frame_write_request(buf, id, flags, deadline,
                                   slice_str(service), key, payload);
    json_t *o = entry(name, FRAME_REQUEST, flags, id);

    json_object_set_new(body(o), "deadline_ms", json_integer(deadline));
    set_str(body(o), "service", slice_str(service));
    set_hex(body(o), "key_hex", key.p, key.len);
    set_hex(body(o), "payload_hex", payload.p, payload.len);
    add(o, buf, n);
}

static void
reply(const char *name, uint64_t id, struct slice payload)
{
    size_t n = frame_write_reply_header(buf, id, (uint32_t)payload.len);
    json_t *o = entry(name, FRAME_REPLY, 0, id);

    if (payload.len > 0) {
        memcpy(buf + n, payload.p, payload.len);
    }
    n += payload.len;
    set_hex(body(o), "payload_hex", payload.p, payload.len);
    add(o, buf, n);
}

static void
error(const char *name, uint64_t id, uint16_t code, const char *msg)
{
    size_t n = frame_write_error(buf, id, code, slice_str(msg));
    json_t *o = entry(name, FRAME_ERROR, 0, id);

    json_object_set_new(body(o), "code", json_integer(code));
    json_object_set_new(body(o), "code_name",
                        json_string(ferry_errname(code)));
    set_str(body(o), "message", slice_str(msg));
    add(o, buf, n);
}

static void
reg(const char *name, uint64_t id, uint32_t credit, const char *service)
{
    size_t n = frame_write_register(buf, id, credit, slice_str(service));
    json_t *o = entry(name, FRAME_REGISTER, 0, id);

    json_object_set_new(body(o), "credit", json_integer(credit));
    set_str(body(o), "service", slice_str(service));
    add(o, buf, n);
}

static void
empty(const char *name, uint8_t type, uint64_t id)
{
    size_t n = frame_write_empty(buf, type, id);

    add(entry(name, type, 0, id), buf, n);
}

static struct slice
bytes(const void *p, size_t n)
{
    struct slice s = {p, n};
    return s;
}

static void
valid_frames(void)
{
    static uint8_t big[1024];
    static const uint8_t binary[] = {0x00, 0xff, 0x10, 0x80, 0x7f, 0x00};
    static const uint8_t extra[] = {0x00, 0x00, 0x00, 0x2a, 0xff};
    const struct slice none = {NULL, 0};
    size_t i;

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 7 + 3);
    }
    /* Version 1, which ferryd still answers in the version-1 layout. */
    hello("hello_caller", 1, FRAME_ROLE_CALLER, 0, 0, "cli", "", none);
    hello("hello_worker", 1, FRAME_ROLE_WORKER, 2500, 0, "fib-worker-1",
          "s3cret", none);
    hello("hello_peer_empty_name", 1, FRAME_ROLE_PEER, 1000, 0, "", "",
          none);
    /* Version 2: max_frame after the token. */
    hello("hello_v2_caller", 2, FRAME_ROLE_CALLER, 0, 0, "cli", "", none);
    hello("hello_v2_worker", 2, FRAME_ROLE_WORKER, 2500, 1048576,
          "fib-worker-1", "s3cret", none);
    /* Version 3 and up: the version-2 fields, then anything, ignored. */
    hello("hello_v3_trailing", 3, FRAME_ROLE_CALLER, 0, 65536, "next", "",
          bytes(extra, sizeof(extra)));
    hello("hello_future_version", 7, FRAME_ROLE_CALLER, 0xfffffffeu,
          0xffffffffu, "x", "t", none);
    hello_ok("hello_ok", 1, 2500, FRAME_DEFAULT_MAX_BODY, 0, 0, "ferryd/0.1",
             none);
    hello_ok("hello_ok_empty_name", 1, 0, 1024, 0, 0, "", none);
    hello_ok("hello_ok_v2", 2, 2500, FRAME_DEFAULT_MAX_BODY, 60000, 5000,
             "ferryd/0.1", none);
    hello_ok("hello_ok_v2_no_heartbeat", 2, 0, 1024, 86400000, 1, "",
             none);
    hello_ok("hello_ok_v3_trailing", 3, 0, 1024, 60000, 5000, "ferryd/9",
             bytes(extra, sizeof(extra)));
    request("request_doc_example", 7, 0, 1000, "echo", bytes(NULL, 0),
            bytes("hi", 2));
    request("request_idempotent_with_key", 0x0102030405060708ull,
            FERRY_IDEMPOTENT, 0, "fib", bytes("user:42", 7),
            bytes("{\"n\":10}", 8));
    request("request_empty_payload", 1, 0, 0xffffffffu, "s", bytes(NULL, 0),
            bytes(NULL, 0));
    request("request_max_key_binary_payload", UINT64_MAX, 0x80, 5000,
            "caf\xc3\xa9", bytes(big, FRAME_MAX_KEY),
            bytes(binary, sizeof(binary)));
    reply("reply", 7, bytes("hi", 2));
    reply("reply_empty", 42, bytes(NULL, 0));
    reply("reply_binary", 0x8000000000000001ull,
          bytes(binary, sizeof(binary)));
    error("error_deadline", 9, FERRY_EDEADLINE, "deadline exceeded");
    error("error_connection_proto", 0, FERRY_EPROTO, "bad frame");
    error("error_empty_message", 3, FERRY_EWORKER_LOST, "");
    error("error_unknown_code", 5, 999, "from the future");
    empty("cancel", FRAME_CANCEL, 7);
    reg("register", 1, 16, "fib");
    reg("register_credit_max", 2, FRAME_MAX_CREDIT, "echo_ext");
    reg("register_credit_one", 3, 1, "a");
    /* Well formed with values the broker refuses: ERROR INVALID_ARGUMENT
     * with the registration id, and the connection stays. */
    reg("register_credit_0", 4, 0, "fib");
    reg("register_credit_65536", 5, FRAME_MAX_CREDIT + 1, "fib");
    reg("register_service_len_0", 6, 16, "");
    empty("registered", FRAME_REGISTERED, 1);
    empty("ping", FRAME_PING, 0);
    empty("drain", FRAME_DRAIN, 0);
}

/* Sets the body length in the header of the frame in buf. */
static void
set_body_len(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
invalid_frames(void)
{
    size_t n;
    uint8_t h[FRAME_HEADER_SIZE];
    static uint8_t key[FRAME_MAX_KEY + 1];
    static char longname[FRAME_MAX_NAME + 2];
    static uint8_t msg[FRAME_MAX_ERRMSG + 1];

    /* Decoding: header checks, before the body arrives. */
    frame_write_header(h, FRAME_REQUEST, 0, 1, FRAME_DEFAULT_MAX_BODY + 1);
    add_invalid("too_big_default_max", h, sizeof(h), "TOO_BIG", 0);
    frame_write_header(h, FRAME_REPLY, 0, 1, 0xffffffffu);
    add_invalid("too_big_max_u32", h, sizeof(h), "TOO_BIG", 0);
    frame_write_header(h, FRAME_REQUEST, 0, 1, 101);
    add_invalid("too_big_small_limit", h, sizeof(h), "TOO_BIG", 100);
    frame_write_header(h, 0, 0, 0, 0);
    add_invalid("unknown_type_0", h, sizeof(h), "UNKNOWN_TYPE", 0);
    frame_write_header(h, 11, 0, 0, 0);
    add_invalid("unknown_type_11", h, sizeof(h), "UNKNOWN_TYPE", 0);
    frame_write_header(h, 255, 0, 0, 0);
    add_invalid("unknown_type_255", h, sizeof(h), "UNKNOWN_TYPE", 0);
    /* Both wrong: TOO_BIG is checked first. */
    frame_write_header(h, 11, 0, 0, FRAME_DEFAULT_MAX_BODY + 1);
    add_invalid("too_big_and_unknown_type", h, sizeof(h), "TOO_BIG", 0);
    /* The type is refused from the header alone, before its body. */
    frame_write_header(h, 11, 0, 0, 100);
    add_invalid("unknown_type_body_not_sent", h, sizeof(h), "UNKNOWN_TYPE",
                0);

    /* Incomplete input: consume nothing, ask for more. */
    add_invalid("incomplete_empty", h, 0, NULL, 0);
    n = frame_write_request(buf, 7, 0, 1000, slice_str("echo"),
                            bytes(NULL, 0), bytes("hi", 2));
    add_invalid("incomplete_header", buf, FRAME_HEADER_SIZE - 1, NULL, 0);
    add_invalid("incomplete_body", buf, n - 1, NULL, 0);

    /* HELLO bodies. */
    n = frame_write_hello(buf, 1, FRAME_ROLE_CALLER, 0, 0, slice_str("cli"),
                          slice_str(""));
    buf[FRAME_HEADER_SIZE + 2] = 0;
    add_invalid("hello_role_0", buf, n, "PROTO", 0);
    buf[FRAME_HEADER_SIZE + 2] = 4;
    add_invalid("hello_role_4", buf, n, "PROTO", 0);
    buf[FRAME_HEADER_SIZE + 2] = FRAME_ROLE_CALLER;
    put16(buf + FRAME_HEADER_SIZE + 8, 200);
    add_invalid("hello_name_len_past_end", buf, n, "PROTO", 0);
    put16(buf + FRAME_HEADER_SIZE + 8, 3);
    put16(buf + n - 2, 1);
    add_invalid("hello_token_len_past_end", buf, n, "PROTO", 0);
    memset(longname, 'n', FRAME_MAX_NAME + 1);
    n = frame_write_hello(buf, 1, FRAME_ROLE_CALLER, 0, 0, slice_str("cli"),
                          slice_str(""));
    set_body_len(buf, (uint32_t)(n - FRAME_HEADER_SIZE + 1));
    buf[n] = 0;
    add_invalid("hello_trailing_byte", buf, n + 1, "PROTO", 0);
    set_body_len(buf, 7);
    add_invalid("hello_short_body", buf, FRAME_HEADER_SIZE + 7, "PROTO", 0);
    /* A 256-byte name: write a 255-byte one and patch in one more byte. */
    longname[FRAME_MAX_NAME] = '\0';
    n = frame_write_hello(buf, 1, FRAME_ROLE_CALLER, 0, 0,
                          slice_str(longname), slice_str(""));
    memmove(buf + FRAME_HEADER_SIZE + 10 + FRAME_MAX_NAME + 1,
            buf + FRAME_HEADER_SIZE + 10 + FRAME_MAX_NAME, 2);
    buf[FRAME_HEADER_SIZE + 10 + FRAME_MAX_NAME] = 'n';
    put16(buf + FRAME_HEADER_SIZE + 8, FRAME_MAX_NAME + 1);
    set_body_len(buf, (uint32_t)(n + 1 - FRAME_HEADER_SIZE));
    add_invalid("hello_name_len_256", buf, n + 1, "PROTO", 0);
    /* A 256-byte token, likewise. */
    n = frame_write_hello(buf, 1, FRAME_ROLE_CALLER, 0, 0, slice_str(""),
                          slice_str(longname));
    buf[n] = 't';
    put16(buf + FRAME_HEADER_SIZE + 10, FRAME_MAX_NAME + 1);
    set_body_len(buf, (uint32_t)(n + 1 - FRAME_HEADER_SIZE));
    add_invalid("hello_token_len_256", buf, n + 1, "PROTO", 0);
    /* Version 2: exactly its fields. */
    n = frame_write_hello(buf, 2, FRAME_ROLE_CALLER, 0, 65536,
                          slice_str("cli"), slice_str(""));
    set_body_len(buf, (uint32_t)(n - 4 - FRAME_HEADER_SIZE));
    add_invalid("hello_v2_no_max_frame", buf, n - 4, "PROTO", 0);
    set_body_len(buf, (uint32_t)(n + 1 - FRAME_HEADER_SIZE));
    buf[n] = 0;
    add_invalid("hello_v2_trailing_byte", buf, n + 1, "PROTO", 0);
    /* Version 3 needs the version-2 fields before its own. */
    n = frame_write_hello(buf, 3, FRAME_ROLE_CALLER, 0, 0, slice_str("cli"),
                          slice_str(""));
    set_body_len(buf, (uint32_t)(n - 2 - FRAME_HEADER_SIZE));
    add_invalid("hello_v3_short", buf, n - 2, "PROTO", 0);
    /* A version-2 role outside 1..3. */
    n = frame_write_hello(buf, 2, FRAME_ROLE_CALLER, 0, 0, slice_str("cli"),
                          slice_str(""));
    buf[FRAME_HEADER_SIZE + 2] = 255;
    add_invalid("hello_v2_role_255", buf, n, "PROTO", 0);

    /* HELLO_OK bodies. */
    n = frame_write_hello_ok(buf, 1, 0, 1024, 0, 0, slice_str("ferryd/0.1"));
    put16(buf + FRAME_HEADER_SIZE + 12, 11);
    add_invalid("hello_ok_name_len_past_end", buf, n, "PROTO", 0);
    put16(buf + FRAME_HEADER_SIZE + 12, 10);
    set_body_len(buf, (uint32_t)(n - FRAME_HEADER_SIZE + 1));
    buf[n] = 'x';
    add_invalid("hello_ok_trailing_byte", buf, n + 1, "PROTO", 0);
    n = frame_write_hello_ok(buf, 2, 0, 1024, 60000, 5000,
                             slice_str("ferryd/0.1"));
    set_body_len(buf, (uint32_t)(n - 4 - FRAME_HEADER_SIZE));
    add_invalid("hello_ok_v2_short", buf, n - 4, "PROTO", 0);
    set_body_len(buf, (uint32_t)(n + 1 - FRAME_HEADER_SIZE));
    buf[n] = 0;
    add_invalid("hello_ok_v2_trailing_byte", buf, n + 1, "PROTO", 0);

    /* REQUEST bodies. */
    n = frame_write_request(buf, 7, 0, 1000, slice_str("echo"),
                            bytes(NULL, 0), bytes("hi", 2));
    put16(buf + FRAME_HEADER_SIZE + 4, 0);
    add_invalid("request_service_len_0", buf, n, "PROTO", 0);
    put16(buf + FRAME_HEADER_SIZE + 4, 7);
    add_invalid("request_service_len_past_end", buf, n, "PROTO", 0);
    put16(buf + FRAME_HEADER_SIZE + 4, 4);
    put16(buf + FRAME_HEADER_SIZE + 6, 3);
    add_invalid("request_key_len_past_end", buf, n, "PROTO", 0);
    set_body_len(buf, 7);
    add_invalid("request_short_body", buf, FRAME_HEADER_SIZE + 7, "PROTO",
                0);
    memset(key, 'k', sizeof(key));
    n = frame_write_request(buf, 7, 0, 1000, slice_str("echo"),
                            bytes(key, FRAME_MAX_KEY), bytes("hi", 2));
    put16(buf + FRAME_HEADER_SIZE + 6, FRAME_MAX_KEY + 1);
    add_invalid("request_key_len_1025", buf, n, "PROTO", 0);
    n = frame_write_request(buf, 7, 0, 1000, slice_str(longname),
                            bytes(NULL, 0), bytes("hi", 2));
    put16(buf + FRAME_HEADER_SIZE + 4, FRAME_MAX_NAME + 1);
    add_invalid("request_service_len_256", buf, n, "PROTO", 0);

    /* ERROR bodies. */
    n = frame_write_error(buf, 9, FERRY_EDEADLINE, slice_str("late"));
    put16(buf + FRAME_HEADER_SIZE + 2, 5);
    add_invalid("error_msg_len_past_end", buf, n, "PROTO", 0);
    put16(buf + FRAME_HEADER_SIZE + 2, 4);
    set_body_len(buf, (uint32_t)(n - FRAME_HEADER_SIZE + 1));
    buf[n] = 0;
    add_invalid("error_trailing_byte", buf, n + 1, "PROTO", 0);
    set_body_len(buf, 3);
    add_invalid("error_short_body", buf, FRAME_HEADER_SIZE + 3, "PROTO", 0);
    memset(msg, 'm', sizeof(msg));
    n = frame_write_error(buf, 9, FERRY_EDEADLINE,
                          bytes(msg, FRAME_MAX_ERRMSG));
    buf[n] = 'm';
    put16(buf + FRAME_HEADER_SIZE + 2, FRAME_MAX_ERRMSG + 1);
    set_body_len(buf, (uint32_t)(n + 1 - FRAME_HEADER_SIZE));
    add_invalid("error_msg_len_1025", buf, n + 1, "PROTO", 0);

    /* REGISTER bodies (credit 0 or 65536 and service_len 0 are valid
     * frames: see valid_frames()). */
    n = frame_write_register(buf, 1, 16, slice_str("fib"));
    put16(buf + FRAME_HEADER_SIZE + 4, 4);
    add_invalid("register_service_len_past_end", buf, n, "PROTO", 0);
    put16(buf + FRAME_HEADER_SIZE + 4, 3);
    set_body_len(buf, (uint32_t)(n - FRAME_HEADER_SIZE + 1));
    buf[n] = 0;
    add_invalid("register_trailing_byte", buf, n + 1, "PROTO", 0);
    set_body_len(buf, 5);
    add_invalid("register_short_body", buf, FRAME_HEADER_SIZE + 5, "PROTO",
                0);
    n = frame_write_register(buf, 1, 1, slice_str(longname));
    buf[n] = 'n';
    put16(buf + FRAME_HEADER_SIZE + 4, FRAME_MAX_NAME + 1);
    set_body_len(buf, (uint32_t)(n + 1 - FRAME_HEADER_SIZE));
    add_invalid("register_service_len_256", buf, n + 1, "PROTO", 0);

    /* Frames that must be empty. */
    frame_write_header(buf, FRAME_PING, 0, 0, 1);
    buf[FRAME_HEADER_SIZE] = 0;
    add_invalid("ping_with_body", buf, FRAME_HEADER_SIZE + 1, "PROTO", 0);
    frame_write_header(buf, FRAME_CANCEL, 0, 7, 2);
    buf[FRAME_HEADER_SIZE] = 0;
    buf[FRAME_HEADER_SIZE + 1] = 0;
    add_invalid("cancel_with_body", buf, FRAME_HEADER_SIZE + 2, "PROTO", 0);
    frame_write_header(buf, FRAME_REGISTERED, 0, 1, 1);
    add_invalid("registered_with_body", buf, FRAME_HEADER_SIZE + 1, "PROTO",
                0);
    frame_write_header(buf, FRAME_DRAIN, 0, 0, 1);
    add_invalid("drain_with_body", buf, FRAME_HEADER_SIZE + 1, "PROTO", 0);
}

int
main(void)
{
    json_t *root = json_object();

    frames = json_array();
    valid_frames();
    invalid_frames();
    json_object_set_new(root, "version", json_integer(FERRY_PROTOCOL_VERSION));
    json_object_set_new(root, "max_body",
                        json_integer(FRAME_DEFAULT_MAX_BODY));
    json_object_set_new(root, "frames", frames);
    if (json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0) {
        return 1;
    }
    putchar('\n');
    json_decref(root);
    return 0;
}
