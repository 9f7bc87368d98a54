/* SPDX-License-Identifier: MIT */
/*
 * frame.h - the ferry wire codec (docs/protocol.md), shared by ferryd,
 * libferry, the ferry command and the fuzzers.
 *
 * Decoding never allocates and never copies: a decoded frame and its parsed
 * fields are slices of the caller's input buffer, valid until that buffer
 * changes. Encoding writes into memory the caller reserved after asking for
 * the exact size, so a frame goes straight into a connection's output
 * buffer. Every length is checked against its limit before it is trusted.
 */
#ifndef FERRY_PROTO_FRAME_H
#define FERRY_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

#define FRAME_HEADER_SIZE 16
#define FRAME_DEFAULT_MAX_BODY (16u * 1024 * 1024)
#define FRAME_MAX_NAME 255    /* HELLO name, token; service names */
#define FRAME_MAX_KEY 1024    /* routing key */
#define FRAME_MAX_ERRMSG 1024 /* ERROR message */
#define FRAME_MAX_CREDIT 65535
#define FRAME_VERSION_1 1     /* HELLO and HELLO_OK without limits */
#define FRAME_VERSION_2 2     /* adds max_frame, max/default deadline */
/* The least max_frame a client may announce: the largest ERROR body
 * (code, msg_len and a 1024-byte message) must fit. */
#define FRAME_MIN_CLIENT_MAX (2 + 2 + FRAME_MAX_ERRMSG)

enum frame_type {
    FRAME_HELLO = 1,
    FRAME_HELLO_OK = 2,
    FRAME_REQUEST = 3,
    FRAME_REPLY = 4,
    FRAME_ERROR = 5,
    FRAME_CANCEL = 6,
    FRAME_REGISTER = 7,
    FRAME_REGISTERED = 8,
    FRAME_PING = 9,
    FRAME_DRAIN = 10,
    FRAME_TYPE_MAX = FRAME_DRAIN
};

enum frame_role {
    FRAME_ROLE_CALLER = 1,
    FRAME_ROLE_WORKER = 2,
    FRAME_ROLE_PEER = 3
};

/* A borrowed run of bytes. */
struct slice {
    const uint8_t *p; /* borrowed */
    size_t len;       /* bytes at p */
};

/* A decoded frame: header fields and a borrowed body. */
struct frame {
    uint8_t type;        /* enum frame_type */
    uint8_t flags;       /* type-specific bits */
    uint64_t id;         /* request or registration id */
    struct slice body;   /* borrowed from the input buffer */
};

struct frame_hello {
    uint16_t version;      /* highest version the client speaks */
    uint8_t role;          /* enum frame_role */
    uint32_t heartbeat_ms; /* client's promise: a frame at least this
                              often; 0 = none */
    uint32_t max_frame;    /* version 2+: largest body the client takes,
                              0 = no limit of its own (and in version 1) */
    struct slice name;     /* borrowed */
    struct slice token;    /* borrowed */
};

struct frame_hello_ok {
    uint16_t version;             /* version in use */
    uint32_t heartbeat_ms;        /* daemon's promise: PING when it has
                                     sent nothing this long; 0 = none */
    uint32_t max_frame;           /* largest body the daemon accepts */
    uint32_t max_deadline_ms;     /* version 2+: cap on any deadline;
                                     0 in version 1 */
    uint32_t default_deadline_ms; /* version 2+: deadline of deadline_ms
                                     0; 0 in version 1 */
    struct slice name;            /* borrowed */
};

struct frame_request {
    uint32_t deadline_ms;  /* time allowed, 0 = default */
    struct slice service;  /* borrowed, 1..255 bytes */
    struct slice key;      /* borrowed, 0..1024 bytes */
    struct slice payload;  /* borrowed, rest of the body */
};

struct frame_error {
    uint16_t code;    /* enum ferry_err */
    struct slice msg; /* borrowed, 0..1024 bytes */
};

struct frame_register {
    uint32_t credit;      /* as sent; the broker takes 1..65535 */
    struct slice service; /* borrowed, 0..255 bytes; the broker takes 1+ */
};

/*
 * Decodes the frame at the start of buf[0..len). On FERRY_OK, *consumed is
 * the frame's total size and *out describes it, or *consumed is 0 when buf
 * does not yet hold a whole frame (read more and call again). Returns
 * FERRY_ETOO_BIG when the header declares a body above max_body (checked
 * from the header alone, before the body arrives) and FERRY_EUNKNOWN_TYPE
 * for a type outside the table. Body fields are checked by the
 * frame_parse_* functions.
 */
ferry_err frame_decode(const uint8_t *buf, size_t len, uint32_t max_body,
                       struct frame *out, size_t *consumed);

/*
 * Parse a decoded frame's body; FERRY_EPROTO when it is malformed. The
 * out-parameter is written only on success. HELLO and HELLO_OK are laid
 * out by the version they carry: version 0 or 1 as version 1, exactly;
 * version 2 with its fields, exactly; version 3 and above the version-2
 * fields and then anything, ignored, so that a later peer's additions
 * still parse.
 */
ferry_err frame_parse_hello(const struct frame *f, struct frame_hello *out);
ferry_err frame_parse_hello_ok(const struct frame *f,
                               struct frame_hello_ok *out);
ferry_err frame_parse_request(const struct frame *f,
                              struct frame_request *out);
ferry_err frame_parse_error(const struct frame *f, struct frame_error *out);
ferry_err frame_parse_register(const struct frame *f,
                               struct frame_register *out);

/*
 * Checks a frame that must have an empty body (REGISTERED, PING, DRAIN,
 * CANCEL); FERRY_EPROTO otherwise.
 */
ferry_err frame_check_empty(const struct frame *f);

/* Total encoded sizes, header included. */
/* HELLO and HELLO_OK in the layout of version (1, or 2 for 2 and up). */
size_t frame_hello_size(uint16_t version, size_t name_len, size_t token_len);
size_t frame_hello_ok_size(uint16_t version, size_t name_len);
size_t frame_request_size(size_t service_len, size_t key_len,
                          size_t payload_len);
size_t frame_error_size(size_t msg_len);
size_t frame_register_size(size_t service_len);

/*
 * Writers: each fills exactly the size the matching frame_*_size() gives,
 * starting at dst, and returns that size. Callers check limits first
 * (frame_request_fits() and friends); writers assert them.
 */
size_t frame_write_header(uint8_t *dst, uint8_t type, uint8_t flags,
                          uint64_t id, uint32_t body_len);
/* max_frame is written in version 2 and above only. */
size_t frame_write_hello(uint8_t *dst, uint16_t version, uint8_t role,
                         uint32_t heartbeat_ms, uint32_t max_frame,
                         struct slice name, struct slice token);
/* The deadlines are written in version 2 and above only. */
size_t frame_write_hello_ok(uint8_t *dst, uint16_t version,
                            uint32_t heartbeat_ms, uint32_t max_frame,
                            uint32_t max_deadline_ms,
                            uint32_t default_deadline_ms, struct slice name);
size_t frame_write_request(uint8_t *dst, uint64_t id, uint8_t flags,
                           uint32_t deadline_ms, struct slice service,
                           struct slice key, struct slice payload);
/* REPLY header only: the payload follows, written by the caller. */
size_t frame_write_reply_header(uint8_t *dst, uint64_t id,
                                uint32_t payload_len);
/* A message above FRAME_MAX_ERRMSG is cut to that length. */
size_t frame_write_error(uint8_t *dst, uint64_t id, uint16_t code,
                         struct slice msg);
size_t frame_write_register(uint8_t *dst, uint64_t id, uint32_t credit,
                            struct slice service);
/* A frame with an empty body (CANCEL, REGISTERED, PING, DRAIN). */
size_t frame_write_empty(uint8_t *dst, uint8_t type, uint64_t id);

/* Whether a request with these lengths is valid and fits max_body. */
bool frame_request_fits(size_t service_len, size_t key_len,
                        size_t payload_len, uint32_t max_body);

/* Slice helpers. */
struct slice slice_str(const char *s);
bool slice_eq(struct slice a, struct slice b);

/* The name of a frame type ("REQUEST"), "UNKNOWN" outside the table. */
const char *frame_type_name(uint8_t type);

#endif
