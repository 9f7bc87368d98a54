/* SPDX-License-Identifier: MIT */
/*
 * ferry_servants.h - libferry's helpers for ferryd's built-in services
 * ferry.cache, ferry.kv and ferry.id (docs/services.md): encode a request
 * payload, decode a reply payload, and one synchronous call per operation
 * on a struct ferry_client.
 *
 * Encoders write into the caller's buffer and return the payload's length
 * (like snprintf: when it is more than cap, nothing usable was written and
 * the caller retries with a buffer that large), or 0 when an argument is
 * out of range (a key list longer than 65535, a key over 65535 bytes).
 *
 * Decoders check every length before reading and answer
 * FERRY_EINVALID_ARGUMENT for a malformed reply (short, too long, an
 * unknown status, a count larger than the payload). What they return
 * borrows the reply's bytes: valid as long as those are. The lists of a
 * reply (get-many items, range items, watch events, ids) are read with
 * the *_next / ferry_id_at functions, which decode(d) has already checked.
 *
 * The calls (ferry_cache_get ...) keep the reply in *raw (release it with
 * ferry_reply_release(), also after a failure); ferryd's own errors
 * (TOO_BIG, OVERLOADED, INVALID_ARGUMENT, NOT a status) are their return
 * value, with raw->data holding the message.
 */
#ifndef FERRY_SERVANTS_H
#define FERRY_SERVANTS_H

#include "ferry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The status byte that starts every reply. */
enum ferry_sv_status {
    FERRY_SV_OK = 0, /* hit, stored, deleted, done */
    FERRY_SV_NOT_FOUND = 1,
    FERRY_SV_NOT_STORED = 2,
    FERRY_SV_EXISTS = 3 /* compare failed, cas mismatch */
};

/* "OK", "NOT_FOUND", "NOT_STORED", "EXISTS" or "?". */
const char *ferry_sv_status_name(unsigned status);

struct ferry_bytes {
    const void *data;
    size_t len;
};

/* ------------------------------------------------------------ ferry.cache */

enum ferry_cache_op {
    FERRY_CACHE_GET = 1,
    FERRY_CACHE_GET_MANY = 2,
    FERRY_CACHE_SET = 3,
    FERRY_CACHE_ADD = 4,
    FERRY_CACHE_REPLACE = 5,
    FERRY_CACHE_APPEND = 6,
    FERRY_CACHE_PREPEND = 7,
    FERRY_CACHE_CAS = 8,
    FERRY_CACHE_DELETE = 9,
    FERRY_CACHE_INCR = 10,
    FERRY_CACHE_DECR = 11,
    FERRY_CACHE_TOUCH = 12,
    FERRY_CACHE_GAT = 13,
    FERRY_CACHE_FLUSH = 14
};

struct ferry_cache_req {
    unsigned op;     /* enum ferry_cache_op */
    const void *key; /* the routing key (not in the payload) */
    size_t key_len;
    const void *value; /* SET..CAS */
    size_t value_len;
    uint32_t flags, ttl_ms; /* SET, ADD, REPLACE, CAS; ttl: TOUCH, GAT */
    uint64_t cas;           /* CAS */
    uint64_t delta;         /* INCR, DECR */
    uint32_t delay_ms;      /* FLUSH */
    const struct ferry_bytes *keys; /* GET_MANY */
    size_t n_keys;
};

struct ferry_cache_reply {
    unsigned status;      /* enum ferry_sv_status */
    uint32_t flags;       /* GET, GAT hit */
    uint64_t cas;         /* GET, GAT hit; the new cas of a store */
    uint64_t number;      /* INCR, DECR: the new value */
    const uint8_t *value; /* GET, GAT hit */
    size_t value_len;
    uint16_t n_items;     /* GET_MANY: read them with ferry_cache_next */
    const uint8_t *items; /* (checked) */
    size_t items_len;
};

/* One GET_MANY item; status FERRY_SV_NOT_FOUND for a miss. */
struct ferry_cache_item {
    unsigned status;
    uint32_t flags;
    uint64_t cas;
    const uint8_t *value;
    size_t value_len;
};

size_t ferry_cache_encode(const struct ferry_cache_req *req, uint8_t *dst,
                          size_t cap);
ferry_err ferry_cache_decode(unsigned op, const void *reply, size_t len,
                             struct ferry_cache_reply *out);
/* The next GET_MANY item; false after the last. *pos starts at 0. */
bool ferry_cache_next(const struct ferry_cache_reply *r, size_t *pos,
                      struct ferry_cache_item *item);

/* Any operation: encodes req, calls ferry.cache with req's key, decodes. */
ferry_err ferry_cache_call(struct ferry_client *c,
                           const struct ferry_cache_req *req,
                           uint32_t deadline_ms, struct ferry_reply *raw,
                           struct ferry_cache_reply *out);
ferry_err ferry_cache_get(struct ferry_client *c, const void *key,
                          size_t key_len, struct ferry_reply *raw,
                          struct ferry_cache_reply *out);
ferry_err ferry_cache_set(struct ferry_client *c, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          uint32_t flags, uint32_t ttl_ms,
                          struct ferry_reply *raw,
                          struct ferry_cache_reply *out);
ferry_err ferry_cache_add(struct ferry_client *c, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          uint32_t flags, uint32_t ttl_ms,
                          struct ferry_reply *raw,
                          struct ferry_cache_reply *out);
ferry_err ferry_cache_cas(struct ferry_client *c, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          uint32_t flags, uint32_t ttl_ms, uint64_t cas,
                          struct ferry_reply *raw,
                          struct ferry_cache_reply *out);
ferry_err ferry_cache_delete(struct ferry_client *c, const void *key,
                             size_t key_len, struct ferry_reply *raw,
                             struct ferry_cache_reply *out);
ferry_err ferry_cache_incr(struct ferry_client *c, const void *key,
                           size_t key_len, uint64_t delta,
                           struct ferry_reply *raw,
                           struct ferry_cache_reply *out);
ferry_err ferry_cache_decr(struct ferry_client *c, const void *key,
                           size_t key_len, uint64_t delta,
                           struct ferry_reply *raw,
                           struct ferry_cache_reply *out);
ferry_err ferry_cache_touch(struct ferry_client *c, const void *key,
                            size_t key_len, uint32_t ttl_ms,
                            struct ferry_reply *raw,
                            struct ferry_cache_reply *out);
ferry_err ferry_cache_flush(struct ferry_client *c, uint32_t delay_ms,
                            struct ferry_reply *raw,
                            struct ferry_cache_reply *out);

/* --------------------------------------------------------------- ferry.kv */

enum ferry_kv_op {
    FERRY_KV_GET = 1,
    FERRY_KV_PUT = 2,
    FERRY_KV_DELETE = 3,
    FERRY_KV_RANGE = 4,
    FERRY_KV_COUNT = 5,
    FERRY_KV_WATCH = 6
};
enum ferry_kv_cond {
    FERRY_KV_ANY = 0,
    FERRY_KV_IF_ABSENT = 1,
    FERRY_KV_IF_MOD_REV = 2
};

struct ferry_kv_req {
    unsigned op;     /* enum ferry_kv_op */
    const void *key; /* the key; RANGE/COUNT/WATCH: start or prefix */
    size_t key_len;
    const void *value; /* PUT */
    size_t value_len;
    unsigned cond; /* PUT, DELETE: enum ferry_kv_cond */
    uint64_t rev;  /* with FERRY_KV_IF_MOD_REV */
    bool has_end;  /* RANGE, COUNT: [key, end) instead of prefix */
    const void *end;
    size_t end_len;
    uint32_t limit;      /* RANGE: 0 -> 1000 */
    bool keys_only;      /* RANGE */
    bool prefix;         /* WATCH: every key with the prefix key */
    uint64_t from_rev;   /* WATCH: 0 = after now */
    uint32_t wait_ms;    /* WATCH */
    uint32_t max_events; /* WATCH: 0 -> 1000 */
};

struct ferry_kv_entry {
    const uint8_t *key; /* empty for GET (it is the request's) */
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint64_t create_rev, mod_rev, version;
    unsigned type; /* WATCH events: 0 put, 1 delete */
};

struct ferry_kv_reply {
    unsigned status; /* enum ferry_sv_status */
    uint64_t rev;    /* the store's revision; PUT/DELETE: see docs */
    struct ferry_kv_entry entry; /* GET hit */
    uint64_t count;              /* COUNT */
    bool more;                   /* RANGE: continue from the last key + 0x00 */
    uint32_t n;                  /* RANGE items, WATCH events: ferry_kv_next */
    const uint8_t *list;         /* (checked) */
    size_t list_len;
    unsigned op;
};

size_t ferry_kv_encode(const struct ferry_kv_req *req, uint8_t *dst,
                       size_t cap);
ferry_err ferry_kv_decode(unsigned op, const void *reply, size_t len,
                          struct ferry_kv_reply *out);
bool ferry_kv_next(const struct ferry_kv_reply *r, size_t *pos,
                   struct ferry_kv_entry *e);

ferry_err ferry_kv_call(struct ferry_client *c, const struct ferry_kv_req *req,
                        uint32_t deadline_ms, struct ferry_reply *raw,
                        struct ferry_kv_reply *out);
ferry_err ferry_kv_get(struct ferry_client *c, const void *key, size_t key_len,
                       struct ferry_reply *raw, struct ferry_kv_reply *out);
ferry_err ferry_kv_put(struct ferry_client *c, const void *key, size_t key_len,
                       const void *value, size_t value_len, unsigned cond,
                       uint64_t rev, struct ferry_reply *raw,
                       struct ferry_kv_reply *out);
ferry_err ferry_kv_delete(struct ferry_client *c, const void *key,
                          size_t key_len, unsigned cond, uint64_t rev,
                          struct ferry_reply *raw, struct ferry_kv_reply *out);
/* end NULL: every key with the prefix key; else [key, end). */
ferry_err ferry_kv_range(struct ferry_client *c, const void *key,
                         size_t key_len, const void *end, size_t end_len,
                         uint32_t limit, struct ferry_reply *raw,
                         struct ferry_kv_reply *out);
ferry_err ferry_kv_count(struct ferry_client *c, const void *key,
                         size_t key_len, const void *end, size_t end_len,
                         struct ferry_reply *raw, struct ferry_kv_reply *out);
ferry_err ferry_kv_watch(struct ferry_client *c, const void *key,
                         size_t key_len, bool prefix, uint64_t from_rev,
                         uint32_t wait_ms, struct ferry_reply *raw,
                         struct ferry_kv_reply *out);

/* --------------------------------------------------------------- ferry.id */

enum ferry_id_op { FERRY_ID_NEXT = 1, FERRY_ID_DECODE = 2 };

struct ferry_id_reply {
    unsigned status;
    uint32_t n; /* NEXT: ferry_id_at(r, 0..n-1) */
    const uint8_t *ids;
    uint64_t unix_ms; /* DECODE */
    uint16_t node, seq;
};

/* op NEXT takes count, DECODE takes id; 5 or 9 bytes into dst. */
size_t ferry_id_encode(unsigned op, uint32_t count, uint64_t id, uint8_t *dst,
                       size_t cap);
ferry_err ferry_id_decode_reply(unsigned op, const void *reply, size_t len,
                                struct ferry_id_reply *out);
uint64_t ferry_id_at(const struct ferry_id_reply *r, uint32_t i);

ferry_err ferry_id_next(struct ferry_client *c, uint32_t count,
                        struct ferry_reply *raw, struct ferry_id_reply *out);
ferry_err ferry_id_decode(struct ferry_client *c, uint64_t id,
                          struct ferry_reply *raw, struct ferry_id_reply *out);

#ifdef __cplusplus
}
#endif
#endif
