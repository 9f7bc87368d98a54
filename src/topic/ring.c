/* SPDX-License-Identifier: MIT */
/*
 * ring.c - ferry.topic's refcounted messages, their store and the
 * subscriptions' rings (topic/ring.h).
 */
#include "topic/ring.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation of a ring: small, since most drain at once. */
#define TOPIC_RING_FIRST 8

void
topic_store_init(struct topic_store *s)
{
    list_init(&s->fifo);
    s->n = 0;
    s->bytes = 0;
}

void
topic_store_release(struct topic_store *s)
{
    while (!list_is_empty(&s->fifo)) {
        struct topic_msg *m =
            container_of(s->fifo.next, struct topic_msg, node);

        list_remove(&m->node);
        free(m);
    }
    s->n = 0;
    s->bytes = 0;
}

struct topic_msg *
topic_store_add(struct topic_store *s, struct slice subject,
                struct slice payload)
{
    struct topic_msg *m;

    if (subject.len > UINT16_MAX || payload.len > UINT32_MAX) {
        return NULL;
    }
    m = malloc(sizeof(*m) + subject.len + payload.len);
    if (m == NULL) {
        return NULL;
    }
    m->refs = 0;
    m->subject_len = (uint16_t)subject.len;
    m->len = (uint32_t)payload.len;
    if (subject.len > 0) {
        memcpy(m->data, subject.p, subject.len);
    }
    if (payload.len > 0) {
        memcpy(m->data + subject.len, payload.p, payload.len);
    }
    list_push_back(&s->fifo, &m->node);
    s->n++;
    s->bytes += topic_msg_size(m);
    return m;
}

void
topic_store_free(struct topic_store *s, struct topic_msg *m)
{
    assert(m->refs == 0);
    list_remove(&m->node);
    s->n--;
    s->bytes -= topic_msg_size(m);
    free(m);
}

struct topic_msg *
topic_store_oldest(const struct topic_store *s)
{
    return list_is_empty(&s->fifo)
               ? NULL
               : container_of(s->fifo.next, struct topic_msg, node);
}

void
topic_msg_unref(struct topic_store *s, struct topic_msg *m)
{
    assert(m->refs > 0);
    if (--m->refs == 0) {
        topic_store_free(s, m);
    }
}

void
topic_ring_init(struct topic_ring *r, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max > 0 ? max : 1;
}

void
topic_ring_release(struct topic_ring *r, struct topic_store *s)
{
    struct topic_slot sl;

    while (topic_ring_pop(r, &sl)) {
        topic_msg_unref(s, sl.msg);
    }
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

/* Doubles r's slots (at least TOPIC_RING_FIRST), keeping their order. */
static ferry_err
topic_ring_grow(struct topic_ring *r)
{
    uint32_t cap = r->cap > 0 ? r->cap * 2 : TOPIC_RING_FIRST;
    struct topic_slot *v = malloc((size_t)cap * sizeof(*v));

    if (v == NULL) {
        return FERRY_ENOMEM;
    }
    for (uint32_t i = 0; i < r->n; i++) {
        v[i] = r->v[(r->head + i) & (r->cap - 1)];
    }
    free(r->v);
    r->v = v;
    r->cap = cap;
    r->head = 0;
    return FERRY_OK;
}

ferry_err
topic_ring_push(struct topic_ring *r, struct topic_msg *m, uint64_t seq)
{
    struct topic_slot *sl;

    assert(r->n < r->max);
    if (r->n == r->cap && topic_ring_grow(r) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    sl = &r->v[(r->head + r->n) & (r->cap - 1)];
    sl->msg = m;
    sl->seq = seq;
    r->n++;
    topic_msg_ref(m);
    return FERRY_OK;
}

bool
topic_ring_pop(struct topic_ring *r, struct topic_slot *out)
{
    if (r->n == 0) {
        return false;
    }
    *out = r->v[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->n--;
    if (r->n == 0 && r->cap > TOPIC_RING_FIRST) {
        /* A drained ring gives back what a burst made it grow to. */
        free(r->v);
        r->v = NULL;
        r->cap = 0;
        r->head = 0;
    }
    return true;
}
