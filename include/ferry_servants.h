/* SPDX-License-Identifier: MIT */
/*
 * ferry_servants.h - libferry's helpers for ferryd's built-in services
 * ferry.cache, ferry.kv and ferry.id (docs/services.md), ferry.queue
 * (docs/queues.md) and ferry.topic (docs/topics.md): encode a request
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
 * reply (get-many items, range items, watch events, ids, peek entries,
 * POLL messages) are read with the *_next / ferry_id_at functions, which
 * decode(d) has already checked.
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

/* The status byte that starts every reply of ferry.cache, ferry.kv and
 * ferry.id (ferry.queue and ferry.topic have their own: enum
 * ferry_queue_status, enum ferry_topic_status). */
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

/* ---------------------------------------------------------- ferry.cluster */

/*
 * This node's view of its cluster (the built-in ferry.cluster,
 * docs/cluster.md): on FERRY_OK out->data holds its JSON document (not
 * NUL-terminated, see out->len), {"enabled":false} on a single node,
 * for the caller's JSON parser (libferry has none). Needs what `ferry
 * services` needs: FERRY_EUNAUTHORIZED without the admin token when
 * ferryd has one. deadline_ms 0: ferryd's default. out is always written
 * (release it with ferry_reply_release()), as by ferry_call(). Thread
 * safety: that of ferry_call().
 */
ferry_err ferry_cluster(struct ferry_client *c, uint32_t deadline_ms,
                        struct ferry_reply *out);

/* ------------------------------------------------------------ ferry.queue */

/*
 * Durable work queues (docs/queues.md). A request's routing key is the
 * queue's name (1 to 200 bytes of A-Z a-z 0-9 _ . : -; a queue is made on
 * first use); the calls take it as a NUL-terminated string. Every status
 * is a decoded reply (FERRY_OK from the call), not an error: EMPTY (a
 * reserve with nothing ready within its wait), STALE (the token no longer
 * holds the job: it timed out and went to another consumer, or was
 * released), NOT_FOUND (no such job in the queue, or no such queue).
 * ferryd's refusals (a bad queue name or setting, a bury without a
 * dead-letter queue, a delete of a queue holding jobs: INVALID_ARGUMENT;
 * NO_SPACE; SHUTTING_DOWN) are the calls' return value, raw->data holding
 * the message.
 */

enum ferry_queue_op {
    FERRY_QUEUE_PUSH = 1,
    FERRY_QUEUE_RESERVE = 2,
    FERRY_QUEUE_ACK = 3,
    FERRY_QUEUE_RELEASE = 4,
    FERRY_QUEUE_TOUCH = 5,
    FERRY_QUEUE_BURY = 6,
    FERRY_QUEUE_PEEK = 7,
    FERRY_QUEUE_STATS = 8,
    FERRY_QUEUE_REDRIVE = 9,
    FERRY_QUEUE_PAUSE = 10,
    FERRY_QUEUE_RESUME = 11,
    FERRY_QUEUE_PURGE = 12,
    FERRY_QUEUE_DELETE = 13,
    FERRY_QUEUE_CONFIGURE = 14
};

/* The status byte that starts every ferry.queue reply. */
enum ferry_queue_status {
    FERRY_QUEUE_OK = 0,
    FERRY_QUEUE_EMPTY = 1,    /* RESERVE only */
    FERRY_QUEUE_STALE = 2,    /* ACK, RELEASE, TOUCH, BURY only */
    FERRY_QUEUE_NOT_FOUND = 3 /* any op but PUSH and RESERVE */
};

/* What PEEK looks at. */
enum ferry_queue_peek {
    FERRY_QUEUE_PEEK_READY = 0,
    FERRY_QUEUE_PEEK_DELAYED = 1,
    FERRY_QUEUE_PEEK_DEAD = 2, /* the ready jobs of the dead-letter queue */
    FERRY_QUEUE_PEEK_RESERVED = 3
};

/* A job's state in a PEEK entry. */
enum ferry_queue_state {
    FERRY_QUEUE_READY = 0,
    FERRY_QUEUE_DELAYED = 1,
    FERRY_QUEUE_RESERVED = 2
};

/* RELEASE's delay_ms: wait the queue's backoff_ms entry for the job's
 * attempt. */
#define FERRY_QUEUE_RELEASE_BACKOFF UINT32_MAX

/* "OK", "EMPTY", "STALE", "NOT_FOUND" or "?". */
const char *ferry_queue_status_name(unsigned status);
/* "ready", "delayed", "reserved" or "?". */
const char *ferry_queue_state_name(unsigned state);

/* A request; pointers are borrowed for the call. Fields an op does not
 * take are ignored. */
struct ferry_queue_req {
    unsigned op;             /* enum ferry_queue_op */
    const char *queue;       /* the routing key, NUL-terminated; NULL or ""
                                with STATS: every queue */
    int16_t priority;        /* PUSH: higher first */
    uint32_t delay_ms;       /* PUSH; RELEASE (or ..._RELEASE_BACKOFF) */
    uint32_t visibility_ms;  /* PUSH, RESERVE, TOUCH: 0 = the queue's */
    uint16_t max_deliveries; /* PUSH: 0 = the queue's */
    const void *dedup;       /* PUSH: a dedup id of at most 255 bytes
                                (ferryd takes 128), or NULL */
    size_t dedup_len;
    const void *payload; /* PUSH: the job */
    size_t payload_len;
    uint32_t wait_ms;   /* RESERVE: how long to wait for a job */
    uint64_t id, token; /* ACK, RELEASE, TOUCH, BURY */
    const void *reason; /* BURY: why (at most 1024 bytes kept) */
    size_t reason_len;
    unsigned which;       /* PEEK: enum ferry_queue_peek */
    uint32_t limit;       /* PEEK: 0 -> 10, at most 1000; REDRIVE: 0 ->
                             10000 */
    const char *settings; /* CONFIGURE: a JSON object, NUL-terminated */
};

/* A decoded reply; pointers borrow the reply's bytes. */
struct ferry_queue_reply {
    unsigned status;        /* enum ferry_queue_status */
    uint64_t id;            /* PUSH: the job (the first push's when dup);
                               RESERVE */
    bool dup;               /* PUSH: the dedup id was seen, nothing stored */
    uint64_t token;         /* RESERVE: give it to ack/release/touch/bury */
    uint32_t attempts;      /* RESERVE: deliveries, this one included */
    int16_t priority;       /* RESERVE */
    const uint8_t *payload; /* RESERVE: the job */
    size_t payload_len;
    uint32_t visibility_ms; /* TOUCH: the reservation's time left */
    uint64_t count;         /* REDRIVE: jobs moved; PURGE: jobs removed */
    uint32_t n;             /* PEEK: entries, read with ferry_queue_next */
    const uint8_t *entries; /* (checked) */
    size_t entries_len;
    const char *json; /* STATS, CONFIGURE: the JSON object (not
                         NUL-terminated) */
    size_t json_len;
    unsigned op;
};

/* One PEEK entry. */
struct ferry_queue_entry {
    uint64_t id;
    uint32_t attempts;
    int16_t priority;
    unsigned state;        /* enum ferry_queue_state */
    uint64_t age_ms;       /* since its push */
    const uint8_t *reason; /* why it died (dead jobs) */
    size_t reason_len;
    const uint8_t *payload;
    size_t payload_len;
};

/*
 * Writes req's payload (without the queue: that is the routing key) into
 * dst; returns its length as the other encoders do (more than cap: retry
 * with that much), or 0 for an unknown op, a dedup id over 255 bytes, a
 * PEEK limit over 65535 or an unknown which, or CONFIGURE without
 * settings. Thread-safe; allocates nothing.
 */
size_t ferry_queue_encode(const struct ferry_queue_req *req, uint8_t *dst,
                          size_t cap);
/*
 * Decodes the reply to a request of op into *out (zeroed on failure):
 * FERRY_OK, or FERRY_EINVALID_ARGUMENT for a malformed reply (a length
 * that does not match, PEEK entries that do not add up, an unknown status
 * or job state) and for a status op never answers (EMPTY but to RESERVE,
 * STALE but to ACK/RELEASE/TOUCH/BURY, NOT_FOUND to PUSH or RESERVE).
 * Uses src/queue/queue_codec.c, the daemon's own codec.
 */
ferry_err ferry_queue_decode(unsigned op, const void *reply, size_t len,
                             struct ferry_queue_reply *out);
/* The next PEEK entry; false after the last. *pos starts at 0. */
bool ferry_queue_next(const struct ferry_queue_reply *r, size_t *pos,
                      struct ferry_queue_entry *e);

/* Any operation: encodes req, calls ferry.queue with req->queue as the
 * routing key and deadline_ms (0: ferryd's default; give a RESERVE more
 * than its wait), decodes into *out. */
ferry_err ferry_queue_call(struct ferry_client *c,
                           const struct ferry_queue_req *req,
                           uint32_t deadline_ms, struct ferry_reply *raw,
                           struct ferry_queue_reply *out);
/* Adds a job (on disk when answered): out->id, and out->dup when dedup
 * (dedup_len bytes, NULL for none) was seen within the queue's window.
 * visibility_ms and max_deliveries: ferry_queue_call. */
ferry_err ferry_queue_push(struct ferry_client *c, const char *queue,
                           const void *payload, size_t payload_len,
                           int16_t priority, uint32_t delay_ms,
                           const void *dedup, size_t dedup_len,
                           struct ferry_reply *raw,
                           struct ferry_queue_reply *out);
/* Reserves the next ready job (out->id, token, attempts, priority,
 * payload), waiting up to wait_ms (at most 600000) for one, else status
 * EMPTY; visibility_ms 0 takes the job's or the queue's. The call's
 * deadline is wait_ms + 5 s. */
ferry_err ferry_queue_reserve(struct ferry_client *c, const char *queue,
                              uint32_t wait_ms, uint32_t visibility_ms,
                              struct ferry_reply *raw,
                              struct ferry_queue_reply *out);
/* Removes a reserved job: OK, STALE or NOT_FOUND. */
ferry_err ferry_queue_ack(struct ferry_client *c, const char *queue,
                          uint64_t id, uint64_t token, struct ferry_reply *raw,
                          struct ferry_queue_reply *out);
/* Makes a reserved job ready again after delay_ms
 * (FERRY_QUEUE_RELEASE_BACKOFF: by the queue's backoff_ms); one at its
 * max_deliveries goes to the dead-letter queue. */
ferry_err ferry_queue_release(struct ferry_client *c, const char *queue,
                              uint64_t id, uint64_t token, uint32_t delay_ms,
                              struct ferry_reply *raw,
                              struct ferry_queue_reply *out);
/* Extends a reservation to visibility_ms from now (0: the job's or the
 * queue's); out->visibility_ms is the time left. */
ferry_err ferry_queue_touch(struct ferry_client *c, const char *queue,
                            uint64_t id, uint64_t token, uint32_t visibility_ms,
                            struct ferry_reply *raw,
                            struct ferry_queue_reply *out);
/* Moves a reserved job to the dead-letter queue with reason. */
ferry_err ferry_queue_bury(struct ferry_client *c, const char *queue,
                           uint64_t id, uint64_t token, const void *reason,
                           size_t reason_len, struct ferry_reply *raw,
                           struct ferry_queue_reply *out);
/* Up to limit jobs (0: 10) of which kind, in delivery order, without
 * reserving them: ferry_queue_next. NOT_FOUND: no such queue. */
ferry_err ferry_queue_peek(struct ferry_client *c, const char *queue,
                           unsigned which, uint32_t limit,
                           struct ferry_reply *raw,
                           struct ferry_queue_reply *out);
/* The queue's stats as JSON in out->json (queue NULL: {"queues": [...]},
 * every queue; in a cluster every node's, each with its "node", and
 * "nodes", "missing": docs/cluster.md). */
ferry_err ferry_queue_stats(struct ferry_client *c, const char *queue,
                            struct ferry_reply *raw,
                            struct ferry_queue_reply *out);
/* Moves up to limit (0: 10000) dead jobs back, attempts reset;
 * out->count moved. */
ferry_err ferry_queue_redrive(struct ferry_client *c, const char *queue,
                              uint32_t limit, struct ferry_reply *raw,
                              struct ferry_queue_reply *out);
/* Stops deliveries (pushes are still taken) / delivers again. */
ferry_err ferry_queue_pause(struct ferry_client *c, const char *queue,
                            struct ferry_reply *raw,
                            struct ferry_queue_reply *out);
ferry_err ferry_queue_resume(struct ferry_client *c, const char *queue,
                             struct ferry_reply *raw,
                             struct ferry_queue_reply *out);
/* Removes ready and delayed jobs (at most 10000 a call); out->count. */
ferry_err ferry_queue_purge(struct ferry_client *c, const char *queue,
                            struct ferry_reply *raw,
                            struct ferry_queue_reply *out);
/* Deletes an empty queue (INVALID_ARGUMENT while it holds jobs). */
ferry_err ferry_queue_delete(struct ferry_client *c, const char *queue,
                             struct ferry_reply *raw,
                             struct ferry_queue_reply *out);
/* Changes the settings of the JSON object settings (visibility_ms,
 * max_deliveries, dedup_window_ms, dead_letter, backoff_ms, paused);
 * out->json is the queue's settings now. */
ferry_err ferry_queue_configure(struct ferry_client *c, const char *queue,
                                const char *settings, struct ferry_reply *raw,
                                struct ferry_queue_reply *out);

/* ------------------------------------------------------------ ferry.topic */

/*
 * Publish/subscribe in memory (docs/topics.md). A PUBLISH's routing key
 * is its subject (dot-separated tokens, 1 to 255 bytes, not under
 * "ferry."), a SUBSCRIBE's its pattern ("*" one token, a last ">" the
 * rest); the calls take them as NUL-terminated strings, and ferryd checks
 * them (INVALID_ARGUMENT). A subscription is named by its sub_id (1 to
 * 2^53-1) and taken from with POLL, a long poll: keep one in flight per
 * subscription, its wait below topic_idle_ms, or the subscription expires
 * (then NOT_FOUND: subscribe again; messages were missed). Statuses are
 * decoded replies (FERRY_OK from the call), not errors: EMPTY (a POLL with
 * no message within its wait; its dropped may still tell a gap),
 * NOT_FOUND (no such subscription: never made, unsubscribed, expired, or
 * closed and already told). A POLL of a subscription closed by policy
 * FERRY_TOPIC_CLOSE is the call's error FERRY_ESLOW_CONSUMER once (raw->data
 * holds "slow subscriber: ..."), then NOT_FOUND.
 */

enum ferry_topic_op {
    FERRY_TOPIC_PUBLISH = 1,
    FERRY_TOPIC_SUBSCRIBE = 2,
    FERRY_TOPIC_POLL = 3,
    FERRY_TOPIC_UNSUBSCRIBE = 4,
    FERRY_TOPIC_STATS = 5
};

/* The status byte that starts every ferry.topic reply (ferry.queue's
 * values; 2 is never an answer of ferry.topic). */
enum ferry_topic_status {
    FERRY_TOPIC_OK = 0,       /* POLL: messages (at least one) */
    FERRY_TOPIC_EMPTY = 1,    /* POLL only */
    FERRY_TOPIC_NOT_FOUND = 3 /* POLL, UNSUBSCRIBE, STATS of one sub_id */
};

/* What a subscription does when a message finds its buffer full. */
enum ferry_topic_policy {
    FERRY_TOPIC_DROP_OLDEST = 0, /* drop the oldest buffered message */
    FERRY_TOPIC_CLOSE = 1        /* close the subscription (SLOW_CONSUMER) */
};

/* "OK", "EMPTY", "NOT_FOUND" or "?". */
const char *ferry_topic_status_name(unsigned status);
/* "drop_oldest", "close" or "?". */
const char *ferry_topic_policy_name(unsigned policy);

/* A request; pointers are borrowed for the call. Fields an op does not
 * take are ignored. */
struct ferry_topic_req {
    unsigned op;         /* enum ferry_topic_op */
    const char *subject; /* PUBLISH: the routing key, NUL-terminated */
    const void *payload; /* PUBLISH: the message (may be empty) */
    size_t payload_len;
    const char *pattern;  /* SUBSCRIBE: the routing key, NUL-terminated */
    const char *group;    /* SUBSCRIBE: a queue group of at most 255
                             bytes, or NULL / "" for none */
    uint32_t max_pending; /* SUBSCRIBE: buffer size (0: 1000; ferryd caps
                             it at 65536) */
    unsigned policy;      /* SUBSCRIBE: enum ferry_topic_policy */
    uint64_t sub_id;      /* POLL, UNSUBSCRIBE; STATS: 0 for the totals */
    uint32_t wait_ms;     /* POLL: how long to wait (at most 600000) */
    uint32_t max_msgs;    /* POLL: 0 (or above 1000): 1000 */
};

/* A decoded reply; pointers borrow the reply's bytes. */
struct ferry_topic_reply {
    unsigned status;         /* enum ferry_topic_status */
    uint32_t receivers;      /* PUBLISH: subscriptions the message went to (a
                                group counts once) */
    uint64_t sub_id;         /* SUBSCRIBE */
    uint64_t dropped;        /* POLL OK or EMPTY: messages dropped for the
                                subscription since its previous answer (the gap
                                notice; told once) */
    uint32_t n;              /* POLL OK: messages, read with ferry_topic_next */
    const uint8_t *messages; /* (checked) */
    size_t messages_len;
    const char *json; /* STATS: the JSON object (not NUL-terminated) */
    size_t json_len;
    unsigned op;
};

/* One message of a POLL answer. */
struct ferry_topic_msg {
    uint64_t seq;        /* the subscription's own number, from 1; a hole
                            in them is where messages were dropped */
    const char *subject; /* the subject it was published on (not
                            NUL-terminated) */
    size_t subject_len;
    const uint8_t *payload;
    size_t payload_len;
};

/*
 * Writes req's payload (without the subject or pattern: that is the
 * routing key) into dst; returns its length as the other encoders do
 * (more than cap: retry with that much), or 0 for an unknown op, a group
 * over 255 bytes or a policy other than 0 or 1. Thread-safe; allocates
 * nothing.
 */
size_t ferry_topic_encode(const struct ferry_topic_req *req, uint8_t *dst,
                          size_t cap);
/*
 * Decodes the reply to a request of op into *out (zeroed on failure):
 * FERRY_OK, or FERRY_EINVALID_ARGUMENT for a malformed reply (a length
 * that does not match, POLL messages that do not add up to n) and for a
 * status op never answers (EMPTY but to POLL, NOT_FOUND to PUBLISH or
 * SUBSCRIBE, 2 or above 3 to any). Uses src/topic/topic_codec.c, the
 * daemon's own codec.
 */
ferry_err ferry_topic_decode(unsigned op, const void *reply, size_t len,
                             struct ferry_topic_reply *out);
/* The next POLL message; false after the last. *pos starts at 0. */
bool ferry_topic_next(const struct ferry_topic_reply *r, size_t *pos,
                      struct ferry_topic_msg *m);

/* Any operation: encodes req, calls ferry.topic with the subject
 * (PUBLISH) or pattern (SUBSCRIBE) as the routing key and deadline_ms
 * (0: ferryd's default; give a POLL more than its wait), decodes into
 * *out. */
ferry_err ferry_topic_call(struct ferry_client *c,
                           const struct ferry_topic_req *req,
                           uint32_t deadline_ms, struct ferry_reply *raw,
                           struct ferry_topic_reply *out);
/* Publishes payload on subject: out->receivers, the subscriptions it
 * reached (0: nobody listens; nothing is kept). */
ferry_err ferry_topic_publish(struct ferry_client *c, const char *subject,
                              const void *payload, size_t payload_len,
                              struct ferry_reply *raw,
                              struct ferry_topic_reply *out);
/* Subscribes to pattern: out->sub_id. group NULL or "": a subscription
 * of its own; else it shares the messages of (pattern, group) with the
 * group's other members, each message going to one of them. max_pending
 * and policy: struct ferry_topic_req. */
ferry_err ferry_topic_subscribe(struct ferry_client *c, const char *pattern,
                                const char *group, uint32_t max_pending,
                                unsigned policy, struct ferry_reply *raw,
                                struct ferry_topic_reply *out);
/* Takes up to max_msgs (0: 1000) messages of sub_id, waiting up to
 * wait_ms for the first: OK (ferry_topic_next walks them), EMPTY or
 * NOT_FOUND; out->dropped tells a gap either way. The call's deadline is
 * wait_ms + 5 s. FERRY_ESLOW_CONSUMER: closed by policy FERRY_TOPIC_CLOSE. */
ferry_err ferry_topic_poll(struct ferry_client *c, uint64_t sub_id,
                           uint32_t wait_ms, uint32_t max_msgs,
                           struct ferry_reply *raw,
                           struct ferry_topic_reply *out);
/* Drops the subscription and its buffer: OK or NOT_FOUND. */
ferry_err ferry_topic_unsubscribe(struct ferry_client *c, uint64_t sub_id,
                                  struct ferry_reply *raw,
                                  struct ferry_topic_reply *out);
/* sub_id 0: the totals of docs/topics.md as JSON in out->json (with the
 * subscriptions listed for a caller who may see internals); else that
 * subscription's object, or NOT_FOUND. */
ferry_err ferry_topic_stats(struct ferry_client *c, uint64_t sub_id,
                            struct ferry_reply *raw,
                            struct ferry_topic_reply *out);

#ifdef __cplusplus
}
#endif
#endif
