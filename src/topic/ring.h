/* SPDX-License-Identifier: MIT */
/*
 * ring.h - where ferry.topic keeps its messages: each published message
 * is stored once, refcounted (struct topic_msg), in the engine's store of
 * live messages (struct topic_store: oldest first, with their bytes), and
 * referenced from the bounded ring of every subscription it was routed
 * to (struct topic_ring: slots of a message and its per-subscription
 * sequence number). No copy is made per subscriber: a fan-out of N costs N
 * slots of 16 bytes and one message.
 *
 * A ring grows by doubling up to its subscription's max_pending and gives
 * back what a burst made it grow to once it is drained, so an idle
 * subscription holds 8 slots at most.
 * The store's FIFO is in publish order; because every ring also is, the
 * oldest live message is at the head of every ring that holds it, which
 * is what lets the engine drop it from all of them when the store is over
 * its byte cap (topic.c).
 *
 * Pure C, no libuv: unit-tested alone (tests/unit/test_topic_ring.c).
 */
#ifndef FERRY_TOPIC_RING_H
#define FERRY_TOPIC_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "ferry.h"
#include "proto/frame.h"

/* A published message; owned by the store, shared by the rings. */
struct topic_msg {
    struct list node;     /* in the store's FIFO, oldest first */
    uint32_t refs;        /* ring slots that hold it */
    uint16_t subject_len; /* bytes of subject at data */
    uint32_t len;         /* bytes of payload after it */
    uint8_t data[];       /* subject, then payload */
};

/* Every live message of one engine; embedded in it. */
struct topic_store {
    struct list fifo; /* struct topic_msg, oldest first */
    uint64_t n;       /* messages in it */
    uint64_t bytes;   /* their topic_msg_size() */
};

/* One buffered message of a subscription. */
struct topic_slot {
    struct topic_msg *msg; /* a reference (counted in msg->refs) */
    uint64_t seq;          /* the subscription's sequence number */
};

/* A subscription's buffer; embedded in it. */
struct topic_ring {
    struct topic_slot *v; /* owned: cap slots, or NULL */
    uint32_t cap;         /* a power of two, or 0 */
    uint32_t head;        /* index of the oldest */
    uint32_t n;           /* slots in use */
    uint32_t max;         /* the most it holds (max_pending), >= 1 */
};

static inline struct slice
topic_msg_subject(const struct topic_msg *m)
{
    return (struct slice){m->data, m->subject_len};
}

static inline struct slice
topic_msg_payload(const struct topic_msg *m)
{
    return (struct slice){m->data + m->subject_len, m->len};
}

/* The bytes a message counts against the store's cap: its head, subject
 * and payload. */
static inline size_t
topic_msg_size(const struct topic_msg *m)
{
    return sizeof(*m) + m->subject_len + m->len;
}

void topic_store_init(struct topic_store *s);

/* Frees every message left; the rings that held them must be gone. */
void topic_store_release(struct topic_store *s);

/*
 * A new message (subject 1..65535 bytes, payload below 4 GiB) with no
 * reference yet, appended to s (newest). NULL when out of memory. Drop
 * it with topic_msg_unref() after a topic_msg_ref(), or with
 * topic_store_free() while it has no reference.
 */
struct topic_msg *topic_store_add(struct topic_store *s, struct slice subject,
                                  struct slice payload);

/* Removes m from s and frees it; m must have no reference. */
void topic_store_free(struct topic_store *s, struct topic_msg *m);

/* The oldest live message of s, or NULL. */
struct topic_msg *topic_store_oldest(const struct topic_store *s);

static inline void
topic_msg_ref(struct topic_msg *m)
{
    m->refs++;
}

/* Drops one reference; the last one frees m (from s). */
void topic_msg_unref(struct topic_store *s, struct topic_msg *m);

/* An empty ring of at most max (>= 1) slots; allocates nothing. */
void topic_ring_init(struct topic_ring *r, uint32_t max);

/* Drops every reference it holds and frees its slots. */
void topic_ring_release(struct topic_ring *r, struct topic_store *s);

static inline bool
topic_ring_is_full(const struct topic_ring *r)
{
    return r->n >= r->max;
}

/* The oldest slot, or NULL when empty. */
static inline const struct topic_slot *
topic_ring_head(const struct topic_ring *r)
{
    return r->n > 0 ? &r->v[r->head] : NULL;
}

/*
 * Appends m (taking a reference) with seq. The ring must not be full.
 * FERRY_ENOMEM when it cannot grow: nothing changed then.
 */
ferry_err topic_ring_push(struct topic_ring *r, struct topic_msg *m,
                          uint64_t seq);

/* Removes the oldest slot into *out (its reference passes to the caller);
 * false when empty. An emptied ring keeps at most its first 8 slots. */
bool topic_ring_pop(struct topic_ring *r, struct topic_slot *out);

#endif
