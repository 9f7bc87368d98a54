/* SPDX-License-Identifier: MIT */
/*
 * queue_codec.h - the payloads of ferry.queue (docs/queues.md), the
 * layout of a job in the store, and the encoders and reply decoders the
 * CLI, libferry and the tests use. All integers big-endian.
 *
 * Pure C over slices: decoding checks every length against the payload
 * before anything reads past it and allocates nothing; decoded fields are
 * slices of the payload. It is linked alone into the fuzz target
 * (tests/fuzz/fuzz_queue_payload.c).
 */
#ifndef FERRY_QUEUE_QUEUE_CODEC_H
#define FERRY_QUEUE_QUEUE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "core/be.h"
#include "proto/frame.h"

enum queue_op {
    QUEUE_OP_PUSH = 1,
    QUEUE_OP_RESERVE = 2,
    QUEUE_OP_ACK = 3,
    QUEUE_OP_RELEASE = 4,
    QUEUE_OP_TOUCH = 5,
    QUEUE_OP_BURY = 6,
    QUEUE_OP_PEEK = 7,
    QUEUE_OP_STATS = 8,
    QUEUE_OP_REDRIVE = 9,
    QUEUE_OP_PAUSE = 10,
    QUEUE_OP_RESUME = 11,
    QUEUE_OP_PURGE = 12,
    QUEUE_OP_DELETE = 13,
    QUEUE_OP_CONFIGURE = 14,
};
#define QUEUE_OP_MAX QUEUE_OP_CONFIGURE

/* The first byte of every reply payload. */
enum queue_status {
    QUEUE_ST_OK = 0,
    QUEUE_ST_EMPTY = 1,     /* RESERVE: nothing within the wait; PEEK */
    QUEUE_ST_STALE = 2,     /* the token no longer holds the job: it was
                               re-delivered, released or acked meanwhile */
    QUEUE_ST_NOT_FOUND = 3, /* no such job, or no such queue */
};

/* What PEEK looks at. */
enum queue_peek {
    QUEUE_PEEK_READY = 0,
    QUEUE_PEEK_DELAYED = 1,
    QUEUE_PEEK_DEAD = 2, /* the ready jobs of the dead-letter queue */
    QUEUE_PEEK_RESERVED = 3,
};

/* A job's state, in the store and in PEEK entries. */
enum queue_state {
    QUEUE_READY = 0,
    QUEUE_DELAYED = 1,
    QUEUE_RESERVED = 2,
};

#define QUEUE_NAME_MAX 200               /* bytes of a queue name */
#define QUEUE_DEDUP_MAX 128              /* bytes of a dedup id */
#define QUEUE_REASON_MAX 1024            /* bytes of a bury reason kept */
#define QUEUE_PEEK_MAX 1000              /* PEEK limit at most */
#define QUEUE_PEEK_DEFAULT 10            /* PEEK limit 0 */
#define QUEUE_BACKOFF_MAX 16             /* entries of a backoff list */
#define QUEUE_RELEASE_BACKOFF UINT32_MAX /* RELEASE delay: by the list */
#define QUEUE_CODEC_ERR_SIZE 128         /* room for a decode message */
#define QUEUE_SETTINGS_MAX 4096          /* bytes of a CONFIGURE document */

/* Reply heads, in bytes. */
#define QUEUE_PUSH_REPLY 10   /* status, id, dup */
#define QUEUE_RESERVE_HEAD 23 /* status, id, token, attempts, prio */
#define QUEUE_PEEK_ENTRY_HEAD                                                  \
    29 /* id, attempts, prio, state, age, rlen,                                \
          plen */

/* A decoded request; slices borrow the payload and the key. */
struct queue_req {
    uint8_t op;              /* enum queue_op */
    struct slice queue;      /* the routing key: the queue's name */
    int16_t priority;        /* PUSH: higher first */
    uint32_t delay_ms;       /* PUSH, RELEASE */
    uint32_t visibility_ms;  /* PUSH, RESERVE, TOUCH: 0 = the queue's */
    uint16_t max_deliveries; /* PUSH: 0 = the queue's */
    struct slice dedup;      /* PUSH: empty = none */
    struct slice payload;    /* PUSH: the job */
    uint32_t wait_ms;        /* RESERVE */
    uint64_t id;             /* ACK, RELEASE, TOUCH, BURY */
    uint64_t token;          /* ACK, RELEASE, TOUCH, BURY */
    struct slice reason;     /* BURY */
    uint8_t which;           /* PEEK: enum queue_peek */
    uint32_t limit;          /* PEEK (1..QUEUE_PEEK_MAX), REDRIVE (0 all) */
    struct slice settings;   /* CONFIGURE: a JSON object */
};

/* The op's name in lowercase ("push", "reserve" ...), "?" if none. */
const char *queue_codec_op_name(unsigned op);

/* Whether name is a valid queue name: 1..QUEUE_NAME_MAX bytes of
 * [A-Za-z0-9_.:-]. */
bool queue_name_is_valid(struct slice name);

/*
 * Decodes a request: key is the REQUEST's routing key (the queue; STATS
 * takes an empty one: every queue). FERRY_OK with *out filled, or
 * FERRY_EINVALID_ARGUMENT with a message naming the field in err (at
 * least QUEUE_CODEC_ERR_SIZE bytes).
 */
ferry_err queue_codec_decode(struct slice key, struct slice payload,
                             struct queue_req *out, char *err);

/* Request encoder: the payload of r (its queue travels as the routing
 * key). Returns the size; with dst NULL only the size. */
size_t queue_codec_write_request(uint8_t *dst, const struct queue_req *r);

/* A decoded reply; slices borrow the payload. */
struct queue_reply {
    uint8_t status;       /* enum queue_status */
    uint64_t id;          /* PUSH, RESERVE */
    bool dup;             /* PUSH: the dedup id was seen: id is the
                             first push's */
    uint64_t token;       /* RESERVE */
    uint32_t attempts;    /* RESERVE: deliveries so far, this one
                             included */
    int16_t priority;     /* RESERVE */
    struct slice payload; /* RESERVE: the job */
    uint32_t deadline_ms; /* TOUCH: the reservation's time left */
    uint64_t count;       /* REDRIVE, PURGE: jobs moved or removed */
    uint32_t n;           /* PEEK: entries */
    struct slice entries; /* PEEK: the n entries, checked */
    struct slice json;    /* STATS, CONFIGURE */
};

/* Decodes the reply to a request of op; FERRY_EPROTO when malformed. */
ferry_err queue_codec_decode_reply(unsigned op, struct slice payload,
                                   struct queue_reply *out);

/* One PEEK entry. */
struct queue_peek_entry {
    uint64_t id;
    uint32_t attempts;
    int16_t priority;
    uint8_t state;       /* enum queue_state */
    uint64_t age_ms;     /* since it was pushed */
    struct slice reason; /* why it was buried or dead-lettered */
    struct slice payload;
};

/* Writes one PEEK entry at dst; returns its bytes. */
size_t queue_codec_write_peek_entry(uint8_t *dst,
                                    const struct queue_peek_entry *e);
/* The next PEEK entry from *rest (advanced); false when malformed or
 * none left. */
bool queue_codec_next_peek_entry(struct slice *rest,
                                 struct queue_peek_entry *e);

/*
 * A job in the store (table "queue", key = queue id u32 + job id u64):
 * a fixed head, the reason, the payload. Its state changes rewrite the
 * head only.
 */
struct queue_rec {
    uint8_t state; /* enum queue_state */
    int16_t priority;
    uint32_t attempts;       /* deliveries so far */
    uint16_t max_deliveries; /* 0: unlimited */
    uint32_t visibility_ms;  /* 0: the queue's */
    uint64_t at_ms;          /* unix ms: DELAYED ready time, RESERVED
                                deadline; 0 otherwise */
    uint64_t token;          /* RESERVED: its reservation */
    uint64_t pushed_ms;      /* unix ms of the push */
    uint32_t origin;         /* dead-lettered: the queue id it came from */
    struct slice reason;     /* dead-lettered: why */
    struct slice payload;    /* the job */
};
#define QUEUE_REC_HEAD 44 /* bytes before the reason */
#define QUEUE_KEY_LEN 12  /* queue id u32, job id u64 */

/* Writes r's head, reason and payload at dst (QUEUE_REC_HEAD +
 * reason.len + payload.len bytes); returns the bytes. */
size_t queue_codec_write_rec(uint8_t *dst, const struct queue_rec *r);
/* Writes only the head (QUEUE_REC_HEAD bytes), with r->reason.len. */
void queue_codec_write_rec_head(uint8_t *dst, const struct queue_rec *r);
/* Reads a stored job; false when malformed. */
bool queue_codec_read_rec(const void *data, size_t len, struct queue_rec *r);
/* The store key of job id in queue qid. */
void queue_codec_key(uint8_t dst[QUEUE_KEY_LEN], uint32_t qid, uint64_t id);

#endif
