/* SPDX-License-Identifier: MIT */
/*
 * topic_codec.h - the payloads of ferry.topic (docs/topics.md): the
 * request decoder ferryd runs on what callers send, the request encoder
 * and reply decoders the CLI and the tests use. All integers big-endian
 * (core/be.h).
 *
 * Pure C over slices: decoding checks every length against the payload
 * before anything reads past it and allocates nothing; decoded fields are
 * slices of the payload or the key. It is linked alone (with the trie's
 * validity checks) into the fuzz target tests/fuzz/fuzz_topic_payload.c.
 */
#ifndef FERRY_TOPIC_TOPIC_CODEC_H
#define FERRY_TOPIC_TOPIC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/be.h"
#include "ferry.h"
#include "proto/frame.h"

enum topic_op {
    TOPIC_OP_PUBLISH = 1,
    TOPIC_OP_SUBSCRIBE = 2,
    TOPIC_OP_POLL = 3,
    TOPIC_OP_UNSUBSCRIBE = 4,
    TOPIC_OP_STATS = 5,
};
#define TOPIC_OP_MAX TOPIC_OP_STATS

/* The first byte of every reply payload (the values of ferry.queue's). */
enum topic_status {
    TOPIC_ST_OK = 0,
    TOPIC_ST_EMPTY = 1,     /* POLL: nothing within the wait */
    TOPIC_ST_NOT_FOUND = 3, /* no such subscription (or it expired) */
};

/* What a subscription does when a message finds its buffer full. */
enum topic_policy {
    TOPIC_POLICY_DROP_OLDEST = 0, /* the oldest buffered message goes */
    TOPIC_POLICY_CLOSE = 1,       /* the subscription is closed */
};

#define TOPIC_GROUP_MAX 255        /* bytes of a group name */
#define TOPIC_PENDING_DEFAULT 1000 /* SUBSCRIBE max_pending 0 */
#define TOPIC_PENDING_MAX 65536    /* max_pending is capped here */
#define TOPIC_POLL_DEFAULT 1000    /* POLL max_msgs 0 */
#define TOPIC_POLL_MAX 1000        /* max_msgs is capped here */
/* A POLL answer stops adding messages past this many bytes (it always
 * has one when one is buffered). */
#define TOPIC_POLL_BYTES (1u << 20)
#define TOPIC_MAX_WAIT_MS 600000 /* POLL wait_ms is capped here */
#define TOPIC_RESERVED "ferry"   /* first token of ferryd's events */
#define TOPIC_CODEC_ERR_SIZE 160 /* room for a decode message */
#define TOPIC_MSG_HEAD 14        /* seq, subject_len, len */
#define TOPIC_POLL_HEAD 13       /* status, dropped, n */

/* A decoded request; slices borrow the payload and the key. */
struct topic_req {
    uint8_t op;           /* enum topic_op */
    struct slice subject; /* PUBLISH: the routing key */
    struct slice message; /* PUBLISH: the rest of the payload */
    struct slice pattern; /* SUBSCRIBE: the routing key */
    struct slice group;   /* SUBSCRIBE: empty = none */
    uint32_t max_pending; /* SUBSCRIBE: as sent (0 = default) */
    uint8_t policy;       /* SUBSCRIBE: enum topic_policy */
    uint64_t sub_id;      /* POLL, UNSUBSCRIBE, STATS */
    bool one;             /* STATS: of sub_id only (else all) */
    uint32_t wait_ms;     /* POLL: as sent */
    uint32_t max_msgs;    /* POLL: as sent (0 = default) */
};

/* The op's name in lowercase ("publish", "poll" ...), "?" if none. */
const char *topic_codec_op_name(unsigned op);

/* Whether subject's first token is "ferry": ferryd's own events, which
 * no caller may publish. */
bool topic_subject_is_reserved(struct slice subject);

/* Whether g is a valid group name: 1..255 bytes of printable ASCII
 * (0x21..0x7e). */
bool topic_group_is_valid(struct slice g);

/*
 * Decodes a request: key is the REQUEST's routing key (PUBLISH: the
 * subject; SUBSCRIBE: the pattern; ignored by the others). FERRY_OK with
 * *out filled, or FERRY_EINVALID_ARGUMENT with a message naming the field
 * in err (at least TOPIC_CODEC_ERR_SIZE bytes).
 */
ferry_err topic_codec_decode(struct slice key, struct slice payload,
                             struct topic_req *out, char *err);

/* Request encoder: the payload of r (its subject or pattern travels as the
 * routing key). Returns the size; with dst NULL only the size. */
size_t topic_codec_write_request(uint8_t *dst, const struct topic_req *r);

/* One message of a POLL answer. */
struct topic_msg_entry {
    uint64_t seq;         /* the subscription's own sequence, from 1 */
    struct slice subject; /* borrowed */
    struct slice payload; /* borrowed */
};

/* Writes one POLL entry at dst (TOPIC_MSG_HEAD + subject + payload
 * bytes); returns its bytes. */
size_t topic_codec_write_msg(uint8_t *dst, uint64_t seq, struct slice subject,
                             struct slice payload);

/* The next POLL entry from *rest (advanced); false when malformed or none
 * left. */
bool topic_codec_next_msg(struct slice *rest, struct topic_msg_entry *e);

/* A decoded reply; slices borrow the payload. */
struct topic_reply {
    uint8_t status;        /* enum topic_status */
    uint32_t receivers;    /* PUBLISH */
    uint64_t sub_id;       /* SUBSCRIBE */
    uint64_t dropped;      /* POLL OK and EMPTY: the gap notice */
    uint32_t n;            /* POLL OK: entries */
    struct slice messages; /* POLL OK: the n entries, checked */
    struct slice json;     /* STATS */
};

/* Decodes the reply to a request of op; FERRY_EPROTO when malformed. */
ferry_err topic_codec_decode_reply(unsigned op, struct slice payload,
                                   struct topic_reply *out);

#endif
