/* SPDX-License-Identifier: MIT */
/*
 * cache_codec.h - the payloads of ferry.cache (docs/services.md): the
 * requests the service decodes, the replies it writes, and the encoders
 * and reply decoder the CLI and the tests use. All integers big-endian.
 *
 * Pure C over slices: decoding checks every length against the payload
 * before anything reads past it and allocates nothing; decoded values are
 * slices of the payload. It is linked alone into the fuzz target
 * (tests/fuzz/fuzz_cache_payload.c).
 */
#ifndef FERRY_SERVANTS_CACHE_CODEC_H
#define FERRY_SERVANTS_CACHE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"

enum cache_op {
    CACHE_OP_GET = 1,
    CACHE_OP_GET_MANY = 2,
    CACHE_OP_SET = 3,
    CACHE_OP_ADD = 4,
    CACHE_OP_REPLACE = 5,
    CACHE_OP_APPEND = 6,
    CACHE_OP_PREPEND = 7,
    CACHE_OP_CAS = 8,
    CACHE_OP_DELETE = 9,
    CACHE_OP_INCR = 10,
    CACHE_OP_DECR = 11,
    CACHE_OP_TOUCH = 12,
    CACHE_OP_GAT = 13,
    CACHE_OP_FLUSH = 14,
};
#define CACHE_OP_MAX CACHE_OP_FLUSH

/* The first byte of every reply payload. */
enum cache_reply_status {
    CACHE_ST_OK = 0,
    CACHE_ST_NOT_FOUND = 1,
    CACHE_ST_NOT_STORED = 2,
    CACHE_ST_EXISTS = 3,
};

#define CACHE_CODEC_KEY_MAX 250      /* = CACHE_KEY_MAX */
#define CACHE_CODEC_MANY_MAX 1000    /* keys of one GET_MANY */
#define CACHE_CODEC_HIT_HEAD 13      /* status, u32 flags, u64 cas */
#define CACHE_CODEC_MANY_HIT_HEAD 17 /* status, flags, cas, u32 vlen */
#define CACHE_CODEC_ERR_SIZE 128     /* room for a decode message */

/* A decoded request; slices borrow the payload. */
struct cache_req {
    uint8_t op;         /* enum cache_op */
    struct slice key;   /* the routing key: the item key */
    uint32_t flags;     /* SET, ADD, REPLACE, CAS */
    uint32_t ttl_ms;    /* SET ... CAS, TOUCH, GAT; 0 = never expires */
    uint32_t delay_ms;  /* FLUSH */
    uint64_t cas;       /* CAS: the version compared */
    uint64_t delta;     /* INCR, DECR */
    struct slice value; /* SET ... PREPEND, CAS */
    uint16_t n_keys;    /* GET_MANY: keys in `keys` */
    struct slice keys;  /* GET_MANY: n_keys x (u16 klen, key), checked */
};

/* The op's name in lowercase ("get", "get_many" ...), "?" if none. */
const char *cache_codec_op_name(unsigned op);

/*
 * Decodes a request: key is the REQUEST's routing key. FERRY_OK with *out
 * filled, or FERRY_EINVALID_ARGUMENT with a message naming the field in
 * err (at least CACHE_CODEC_ERR_SIZE bytes). Keys are checked here: 1 to
 * 250 bytes, the routing key empty only for GET_MANY and FLUSH (and then
 * ignored), and every key of a GET_MANY.
 */
ferry_err cache_codec_decode(struct slice key, struct slice payload,
                             struct cache_req *out, char *err);

/* The next key of a decoded GET_MANY's keys: advances *rest. */
bool cache_codec_next_key(struct slice *rest, struct slice *key);

/* Reply writers: each writes at dst and returns the bytes written. */
size_t cache_codec_write_status(uint8_t *dst, uint8_t status);
/* status then u64: OK + cas of a store, OK + the value of incr/decr. */
size_t cache_codec_write_u64(uint8_t *dst, uint8_t status, uint64_t v);
/* A hit's head (CACHE_CODEC_HIT_HEAD bytes); the value follows it. */
size_t cache_codec_write_hit(uint8_t *dst, uint32_t flags, uint64_t cas);
/* One GET_MANY entry's head: a hit (CACHE_CODEC_MANY_HIT_HEAD bytes, the
 * value follows) or, with hit false, the 1 byte of a miss. */
size_t cache_codec_write_many_entry(uint8_t *dst, bool hit, uint32_t flags,
                                    uint64_t cas, uint32_t vlen);

/* Request encoder: the payload of r (its key travels as the routing key;
 * for GET_MANY, r->keys holds the encoded key list). Returns the size;
 * with dst NULL only the size. */
size_t cache_codec_write_request(uint8_t *dst, const struct cache_req *r);

/* A decoded reply of op; value borrows the payload. */
struct cache_reply {
    uint8_t status;     /* enum cache_reply_status */
    uint32_t flags;     /* GET, GAT hit */
    uint64_t cas;       /* GET, GAT hit; stores: the new version */
    uint64_t number;    /* INCR, DECR: the new value */
    struct slice value; /* GET, GAT hit; GET_MANY: the entries after n */
    uint16_t n;         /* GET_MANY: entries */
};

/* Decodes the reply to a request of op; FERRY_EPROTO when malformed. */
ferry_err cache_codec_decode_reply(unsigned op, struct slice payload,
                                   struct cache_reply *out);

/* One GET_MANY entry from *rest (advanced): hit with its fields, or a
 * miss. false when malformed. */
bool cache_codec_next_entry(struct slice *rest, bool *hit, uint32_t *flags,
                            uint64_t *cas, struct slice *value);

#endif
