/* SPDX-License-Identifier: MIT */
/*
 * kv_codec.h - the payloads of ferry.kv (docs/services.md), the layout of
 * a kv value in the store, and the encoders and reply decoders the CLI
 * and the tests use. All integers big-endian.
 *
 * Pure C over slices: decoding checks every length against the payload
 * before anything reads past it and allocates nothing; decoded fields are
 * slices of the payload. It is linked alone into the fuzz target
 * (tests/fuzz/fuzz_kv_payload.c).
 */
#ifndef FERRY_SERVANTS_KV_CODEC_H
#define FERRY_SERVANTS_KV_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "core/be.h"
#include "proto/frame.h"

enum kv_op {
    KV_OP_GET = 1,
    KV_OP_PUT = 2,
    KV_OP_DELETE = 3,
    KV_OP_RANGE = 4,
    KV_OP_COUNT = 5,
    KV_OP_WATCH = 6,
};
#define KV_OP_MAX KV_OP_WATCH

/* The first byte of every reply payload (shared with ferry.cache). */
enum kv_status {
    KV_ST_OK = 0,
    KV_ST_NOT_FOUND = 1,
    KV_ST_NOT_STORED = 2,
    KV_ST_EXISTS = 3,
};

/* PUT / DELETE conditions. */
enum kv_cond {
    KV_COND_ANY = 0,    /* always */
    KV_COND_ABSENT = 1, /* PUT only: the key does not exist */
    KV_COND_REV = 2,    /* the key's mod_rev is R (0: absent) */
};

/* RANGE / COUNT modes. */
enum kv_mode {
    KV_MODE_PREFIX = 0, /* every key starting with key */
    KV_MODE_RANGE = 1,  /* [key, end); an empty end: to the last key */
};

#define KV_KEY_MAX 448                    /* bytes of a key */
#define KV_LIMIT_DEFAULT 1000             /* RANGE limit 0 */
#define KV_LIMIT_MAX 10000                /* RANGE limit at most */
#define KV_EVENTS_DEFAULT 1000            /* WATCH max_events 0 */
#define KV_EVENTS_MAX 10000               /* WATCH max_events at most */
#define KV_META 24                        /* create_rev, mod_rev, version */
#define KV_ENTRY_HEAD (2 + KV_META + 4)   /* + key + value */
#define KV_EVENT_HEAD (1 + KV_ENTRY_HEAD) /* type + entry */
#define KV_CODEC_ERR_SIZE 128             /* room for a decode message */

/* A decoded request; slices borrow the payload and the key. */
struct kv_req {
    uint8_t op;          /* enum kv_op */
    struct slice key;    /* the routing key: key, start or prefix */
    uint8_t cond;        /* PUT, DELETE: enum kv_cond */
    uint64_t rev;        /* PUT, DELETE with KV_COND_REV: R */
    struct slice value;  /* PUT */
    uint8_t mode;        /* RANGE, COUNT: enum kv_mode */
    struct slice end;    /* RANGE, COUNT: end of KV_MODE_RANGE */
    uint32_t limit;      /* RANGE: 1..KV_LIMIT_MAX (0 made default) */
    bool keys_only;      /* RANGE: values left out (vlen 0) */
    bool prefix;         /* WATCH: key is a prefix */
    uint64_t from_rev;   /* WATCH: first revision wanted, 0 = after now */
    uint32_t wait_ms;    /* WATCH: how long to wait for an event */
    uint32_t max_events; /* WATCH: 1..KV_EVENTS_MAX */
};

/* The op's name in lowercase ("get", "put" ...), "?" if none. */
const char *kv_codec_op_name(unsigned op);

/*
 * Decodes a request: key is the REQUEST's routing key. FERRY_OK with *out
 * filled, or FERRY_EINVALID_ARGUMENT with a message naming the field in
 * err (at least KV_CODEC_ERR_SIZE bytes). Keys are 1..448 bytes; RANGE,
 * COUNT and a prefix WATCH take an empty one (every key).
 */
ferry_err kv_codec_decode(struct slice key, struct slice payload,
                          struct kv_req *out, char *err);

/* Whether k is in the range of a decoded RANGE/COUNT (or the prefix). */
bool kv_codec_in_range(const struct kv_req *r, struct slice k);

/* The metadata at the front of every kv value in the store. */
struct kv_meta {
    uint64_t create_rev; /* revision of the put that created the key */
    uint64_t mod_rev;    /* revision of its last put */
    uint64_t version;    /* puts since it was created (1 for the first) */
};

/* Writes m's KV_META bytes at dst. */
void kv_codec_write_meta(uint8_t *dst, const struct kv_meta *m);
/* A stored value: its meta and the user's value (a slice of it). false
 * when it is shorter than KV_META. */
bool kv_codec_read_stored(const void *data, size_t len, struct kv_meta *m,
                          struct slice *value);

/* One RANGE entry or WATCH event (type first when event), written at dst;
 * returns the bytes (KV_ENTRY_HEAD or KV_EVENT_HEAD + klen + vlen). */
size_t kv_codec_write_entry(uint8_t *dst, bool event, uint8_t type,
                            struct slice key, const struct kv_meta *m,
                            struct slice value);

/* Request encoder: the payload of r (its key travels as the routing key).
 * Returns the size; with dst NULL only the size. */
size_t kv_codec_write_request(uint8_t *dst, const struct kv_req *r);

/* A decoded reply; slices borrow the payload. */
struct kv_reply {
    uint8_t status;       /* enum kv_status */
    uint64_t rev;         /* the revision the reply gives (see the table) */
    struct kv_meta meta;  /* GET hit */
    struct slice value;   /* GET hit */
    bool more;            /* RANGE */
    uint32_t n;           /* RANGE, WATCH: entries */
    struct slice entries; /* RANGE, WATCH: the n entries, checked */
    uint64_t count;       /* COUNT */
};

/* Decodes the reply to a request of op; FERRY_EPROTO when malformed
 * (RANGE and WATCH entries are all checked). */
ferry_err kv_codec_decode_reply(unsigned op, struct slice payload,
                                struct kv_reply *out);

/* One entry from *rest (advanced): event says whether a type byte leads.
 * false when malformed or none left. */
bool kv_codec_next_entry(struct slice *rest, bool event, uint8_t *type,
                         struct slice *key, struct kv_meta *m,
                         struct slice *value);

#endif
