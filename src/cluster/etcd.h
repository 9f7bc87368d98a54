/* SPDX-License-Identifier: MIT */
/*
 * etcd.h - an asynchronous client of etcd 3.4's v3 JSON gateway, on the
 * loop of struct loop.
 *
 * Every call is one POST under /v3/ made with libcurl's multi interface:
 * curl tells us which sockets to watch (one uv_poll_t each) and when to
 * wake it (a timer on the loop's heap), and we hand it the events with
 * curl_multi_socket_action, so nothing blocks the loop and there is no
 * thread. A call ends in its callback, run from the loop, never from inside
 * curl: with an error and a message, or with the decoded result. A watch
 * is a long POST whose body is a stream of {"result":{...}} objects; its
 * events are delivered in order as they arrive.
 *
 * What etcd answers is outside input: a response, one watch object and
 * the number of kvs are bounded before anything is allocated for them.
 * Membership (cluster/members.h) is the only user.
 */
#ifndef FERRY_CLUSTER_ETCD_H
#define FERRY_CLUSTER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ferry.h"

struct loop;
struct etcd;
struct etcd_call;

/* The largest response body and the largest single watch object. */
#define ETCD_RESPONSE_MAX (1u << 20)
/* The most kvs one range answer may carry. */
#define ETCD_KVS_MAX 10000u
/* The longest message given to a callback, its NUL included. */
#define ETCD_MSG_SIZE 256

/* One key-value as etcd holds it; owned by the result that carries it. */
struct etcd_kv {
    char *key;                /* owned; NUL-terminated */
    size_t key_len;           /* bytes of key, without the NUL */
    char *value;              /* owned; NUL-terminated (may hold NULs) */
    size_t value_len;         /* bytes of value */
    uint64_t create_revision; /* revision that created it */
    uint64_t mod_revision;    /* revision of its last change */
    int64_t lease;            /* its lease, 0 for none */
};

/* What a call returns; valid only during its callback. */
struct etcd_result {
    uint64_t revision;   /* header.revision */
    int64_t id;          /* lease grant: the lease */
    int64_t ttl;         /* lease grant and keepalive: seconds (0: lost) */
    bool succeeded;      /* txn: the compares held */
    struct etcd_kv *kvs; /* range: owned array */
    size_t n_kvs;        /* entries of kvs */
    uint64_t deleted;    /* delete range: keys deleted */
};

enum etcd_event_type { ETCD_EVENT_PUT = 0, ETCD_EVENT_DELETE = 1 };

/* One watch event; valid only during the callback. */
struct etcd_event {
    enum etcd_event_type type; /* PUT or DELETE */
    struct etcd_kv kv;         /* the key (and value of a PUT) */
};

/*
 * A call's end: err FERRY_OK with r, or an error with a message (r NULL).
 * FERRY_ECONNECTION: no endpoint answered; FERRY_EDEADLINE: the call's
 * timeout passed; FERRY_EPROTO: etcd answered what we cannot read (too
 * large, not JSON, an error object); FERRY_ECANCELLED never reaches a
 * callback (a cancelled call is silent).
 */
typedef void (*etcd_cb)(void *ud, ferry_err err, const char *msg,
                        const struct etcd_result *r);

/* A watch's events and its end. */
struct etcd_watch_hooks {
    /* The watch is in place (etcd's "created"). */
    void (*created)(void *ud);
    /* One event, in revision order. */
    void (*event)(void *ud, const struct etcd_event *ev);
    /*
     * The watch ended and will say nothing more: err FERRY_OK when etcd
     * closed it, FERRY_ECANCELLED with compact_revision when etcd cancelled
     * it because start_revision was compacted (read again from scratch),
     * another error when the stream failed.
     */
    void (*ended)(void *ud, ferry_err err, const char *msg,
                  uint64_t compact_revision);
};

/*
 * A client of the endpoints "http://h:p[,http://h:p...]"; calls go to one
 * endpoint and move to the next on a connection error. timeout_ms bounds
 * each call (0: 1000). NULL on a bad endpoint list or out of memory.
 */
struct etcd *etcd_new(struct loop *l, const char *endpoints,
                      uint32_t timeout_ms);

/* Ends every call without calling back, then frees; safe in a callback. */
void etcd_free(struct etcd *e);

/* The endpoint calls go to now (for logs). */
const char *etcd_endpoint(const struct etcd *e);

/* Ends a call without calling back; harmless in its own callback. */
void etcd_cancel(struct etcd_call *c);

/*
 * The calls. Each returns the call (for etcd_cancel) or NULL when it could
 * not start (out of memory), in which case cb is not called. Keys and
 * values are bytes with their lengths.
 */
struct etcd_call *etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_cb cb,
                                   void *ud);
struct etcd_call *etcd_lease_keepalive(struct etcd *e, int64_t id, etcd_cb cb,
                                       void *ud);
struct etcd_call *etcd_lease_revoke(struct etcd *e, int64_t id, etcd_cb cb,
                                    void *ud);
struct etcd_call *etcd_put(struct etcd *e, const char *key, size_t key_len,
                           const char *value, size_t value_len, int64_t lease,
                           etcd_cb cb, void *ud);
/* prefix true: every key starting with key; else key alone. */
struct etcd_call *etcd_range(struct etcd *e, const char *key, size_t key_len,
                             bool prefix, etcd_cb cb, void *ud);
struct etcd_call *etcd_delete(struct etcd *e, const char *key, size_t key_len,
                              bool prefix, etcd_cb cb, void *ud);
/*
 * Puts key = value under lease only if key does not exist (its
 * create_revision is 0): r->succeeded says whether it was claimed.
 */
struct etcd_call *etcd_claim(struct etcd *e, const char *key, size_t key_len,
                             const char *value, size_t value_len, int64_t lease,
                             etcd_cb cb, void *ud);
/*
 * Puts key = value (no lease) only if key holds exactly old (old NULL: only
 * if key does not exist): a compare-and-swap; r->succeeded says whether.
 */
struct etcd_call *etcd_swap(struct etcd *e, const char *key, size_t key_len,
                            const char *old, size_t old_len, const char *value,
                            size_t value_len, etcd_cb cb, void *ud);
/*
 * Watches every key under prefix from start_revision (0: from now). No
 * timeout; it runs until etcd_cancel, or until hooks->ended.
 */
struct etcd_call *etcd_watch(struct etcd *e, const char *prefix,
                             size_t prefix_len, uint64_t start_revision,
                             const struct etcd_watch_hooks *hooks, void *ud);

/* The watch body's splitter: bytes in, complete JSON objects out. */
enum etcd_split {
    ETCD_SPLIT_MORE = 0,    /* no complete object yet: feed more bytes */
    ETCD_SPLIT_OBJECT = 1,  /* one object ends at *used */
    ETCD_SPLIT_TOO_BIG = 2, /* the object passes the cap */
    ETCD_SPLIT_BAD = 3      /* not a stream of objects */
};

/* Its state between calls; zero it (etcd_splitter_init) per object. */
struct etcd_splitter {
    size_t pos;   /* bytes of the pending input already scanned */
    size_t depth; /* braces and brackets open */
    bool in_str;  /* inside a string */
    bool esc;     /* after a backslash in a string */
    bool started; /* the object's '{' was seen */
    size_t cap;   /* the largest object, in bytes */
};

void etcd_splitter_init(struct etcd_splitter *s, size_t cap);

/*
 * Scans buf[0..len), the input not yet consumed (it must start where the
 * last object ended and grow only at its end between calls). On
 * ETCD_SPLIT_OBJECT, buf[0..*used) holds whitespace then one whole
 * object: the caller consumes those bytes and inits s again.
 */
enum etcd_split etcd_split_next(struct etcd_splitter *s, const char *buf,
                                size_t len, size_t *used);

/*
 * Decodes one watch object ({"result":{...}}): calls hooks->created and
 * hooks->event as it says, and returns FERRY_OK to go on, FERRY_ECANCELLED
 * with *compact when etcd cancelled the watch, or FERRY_EPROTO with msg.
 * Pure: no etcd needed (the fuzz target feeds it).
 */
ferry_err etcd_watch_decode(const char *obj, size_t len,
                            const struct etcd_watch_hooks *hooks, void *ud,
                            uint64_t *compact, char msg[ETCD_MSG_SIZE]);

/* What a call asks; each kind has its own answer's shape. */
enum etcd_kind {
    ETCD_GRANT,
    ETCD_KEEPALIVE,
    ETCD_REVOKE,
    ETCD_PUT,
    ETCD_RANGE,
    ETCD_DELETE,
    ETCD_TXN,
    ETCD_WATCH
};

/*
 * Decodes a whole answer body of that kind (HTTP status given) into r:
 * FERRY_OK (release r after), or FERRY_EPROTO with msg and nothing to
 * release. Pure, like etcd_watch_decode.
 */
ferry_err etcd_result_decode(enum etcd_kind kind, const char *body, size_t len,
                             long status, struct etcd_result *r,
                             char msg[ETCD_MSG_SIZE]);
void etcd_result_release(struct etcd_result *r);

/* msg = fmt with its one %s, cut at ETCD_MSG_SIZE (etcd.c shares it). */
void etcd_msg(char msg[ETCD_MSG_SIZE], const char *fmt, const char *arg);

/* Base64 (RFC 4648, padded): out holds 4 * ((len + 2) / 3) + 1 bytes. */
size_t etcd_b64_encode(const void *in, size_t len, char *out);
/* Decodes into out (room for 3 * (len / 4) + 3); false when not base64. */
bool etcd_b64_decode(const char *in, size_t len, char *out, size_t *out_len);

#endif
