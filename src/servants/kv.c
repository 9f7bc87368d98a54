/* SPDX-License-Identifier: MIT */
/*
 * kv.c - ferry.kv (servants/kv.h): reads on the loop, writes through a
 * store hook that assigns the revision in the writer thread, the watch
 * history and the held watchers.
 */
#include "servants/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/backend.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"
#include "servants/kv_codec.h"
#include "store/store.h"
#include "topic/topic.h"

/* A write waiting for its commit; pooled. The hook fills the results in
 * the writer thread; the loop reads them from the batch's callback on. */
struct kv_write {
    struct kv_write *next_free; /* in the pool */
    struct kv_service *kv;      /* borrowed */
    uint64_t handle;            /* bcall_hold's */
    uint8_t op;                 /* KV_OP_PUT or KV_OP_DELETE */
    uint8_t cond;               /* enum kv_cond */
    uint64_t want_rev;          /* KV_COND_REV: R */
    uint8_t key[KV_KEY_MAX];    /* the key */
    size_t klen;                /* its bytes */
    uint8_t *val;               /* owned: the value (PUT) */
    size_t vlen;                /* its bytes */
    size_t vcap;                /* bytes allocated at val */
    /* Written by the hook. */
    uint8_t status;       /* enum kv_status */
    uint64_t cur_mod_rev; /* the key's mod_rev before, 0 absent */
    struct kv_meta meta;  /* the new meta (delete: mod_rev only) */
};

/* One event of the history; key and value follow it. */
struct kv_event {
    uint8_t type;        /* 0 put, 1 delete */
    uint16_t klen;       /* key bytes */
    uint32_t vlen;       /* value bytes */
    struct kv_meta meta; /* mod_rev is the event's revision */
    uint8_t data[];      /* key, then value */
};

/* A held WATCH. */
struct kv_watcher {
    struct list node;      /* in kv->watchers */
    struct kv_service *kv; /* borrowed */
    struct timer timer;    /* wait_ms */
    uint64_t handle;       /* bcall_hold's */
    struct kv_req req;     /* op, prefix, max_events; key -> keybuf */
    uint64_t from;         /* first revision wanted */
    uint8_t keybuf[KV_KEY_MAX];
};

struct kv_service {
    struct backend be;            /* registered as ferry.kv */
    struct broker *b;             /* borrowed */
    struct loop *loop;            /* borrowed */
    struct store *st;             /* borrowed */
    unsigned t_kv;                /* table "kv" */
    unsigned t_meta;              /* table "meta" */
    uint64_t rev;                 /* the last revision committed */
    struct kv_write *free_writes; /* pool */
    size_t n_free;                /* entries in it */
    struct kv_event **ring;       /* owned: the history, oldest at head */
    size_t ring_head;             /* index of the oldest */
    size_t ring_n;                /* events in it */
    uint64_t ring_bytes;          /* their key and value bytes */
    uint64_t oldest;              /* oldest revision answerable */
    struct list watchers;         /* held watches */
    uv_check_t check;             /* wakes watchers after commits */
    bool check_on;                /* check started */
    bool closing;                 /* kv_service_close was called */
    uint8_t *out;                 /* owned: reply scratch */
    size_t out_cap;               /* bytes at out */
    struct kv_stats stats;        /* counters */
};

#define KV_POOL_MAX 1024

static struct kv_service *
kv_of(struct backend *be)
{
    return container_of(be, struct kv_service, be);
}

/* Room for n bytes of reply at kv->out. */
static uint8_t *
kv_out(struct kv_service *kv, size_t n)
{
    if (n > kv->out_cap) {
        size_t cap = kv->out_cap ? kv->out_cap : 4096;
        uint8_t *p;

        while (cap < n) {
            cap *= 2;
        }
        p = realloc(kv->out, cap);
        if (p == NULL) {
            return NULL;
        }
        kv->out = p;
        kv->out_cap = cap;
    }
    return kv->out;
}

/* status, then u64 (the reply of every write and a GET miss). */
static void
kv_reply_u64(struct bcall *c, uint8_t status, uint64_t v)
{
    uint8_t b[9];

    b[0] = status;
    be_put_u64(b + 1, v);
    bcall_reply(c, b, sizeof(b));
}

/* ---- reads ---- */

static void
kv_get(struct kv_service *kv, struct bcall *c, const struct kv_req *r)
{
    struct store_val v;
    struct kv_meta m;
    struct slice val;
    bool found = false;
    ferry_err err =
        store_get(kv->st, kv->t_kv, r->key.p, r->key.len, &v, &found);
    uint8_t *p;

    if (err != FERRY_OK) {
        bcall_error(c, err, NULL);
        return;
    }
    if (!found || !kv_codec_read_stored(v.data, v.len, &m, &val)) {
        kv->stats.not_found++;
        kv_reply_u64(c, KV_ST_NOT_FOUND, kv->rev);
        return;
    }
    p = bcall_reply_prepare(c, 1 + 8 + v.len);
    if (p == NULL) {
        return;
    }
    p[0] = KV_ST_OK;
    be_put_u64(p + 1, kv->rev);
    memcpy(p + 9, v.data, v.len);
    bcall_reply_commit(c);
}

/* Walks the keys of a RANGE/COUNT: calls each on every one in range, up
 * to limit (0: all), and says whether more are left. */
static ferry_err
kv_walk(struct kv_service *kv, const struct kv_req *r, uint32_t limit,
        bool (*each)(void *arg, struct store_val k, struct store_val v),
        void *arg, uint64_t *n, bool *more)
{
    struct store_cursor *cur;
    struct store_val k, v;
    bool found;
    ferry_err err;

    *n = 0;
    *more = false;
    if ((err = store_cursor_open(kv->st, kv->t_kv, &cur)) != FERRY_OK) {
        return err;
    }
    err = store_seek(cur, r->key.p, r->key.len, &k, &v, &found);
    while (err == FERRY_OK && found) {
        if (!kv_codec_in_range(r, (struct slice){k.data, k.len})) {
            break;
        }
        if (limit > 0 && *n == limit) {
            *more = true;
            break;
        }
        if (!each(arg, k, v)) {
            err = FERRY_ENOMEM;
            break;
        }
        (*n)++;
        err = store_next(cur, &k, &v, &found);
    }
    store_cursor_close(cur);
    return err;
}

struct kv_range_acc {
    struct kv_service *kv; /* borrowed */
    size_t len;            /* bytes written at kv->out */
    bool keys_only;        /* leave the values out */
};

static bool
kv_range_each(void *arg, struct store_val k, struct store_val v)
{
    struct kv_range_acc *a = arg;
    struct kv_meta m;
    struct slice val;
    uint8_t *p;

    if (!kv_codec_read_stored(v.data, v.len, &m, &val)) {
        m = (struct kv_meta){0, 0, 0};
        val = (struct slice){NULL, 0};
    }
    if (a->keys_only) {
        val.len = 0;
    }
    p = kv_out(a->kv, a->len + KV_ENTRY_HEAD + k.len + val.len);
    if (p == NULL) {
        return false;
    }
    a->len += kv_codec_write_entry(p + a->len, false, 0,
                                   (struct slice){k.data, k.len}, &m, val);
    return true;
}

static bool
kv_count_each(void *arg, struct store_val k, struct store_val v)
{
    return true;
}

static void
kv_range(struct kv_service *kv, struct bcall *c, const struct kv_req *r)
{
    struct kv_range_acc a = {kv, 14, r->keys_only};
    uint64_t n;
    bool more;
    ferry_err err;
    uint8_t *p;

    if (kv_out(kv, 14) == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    err = kv_walk(kv, r, r->limit, kv_range_each, &a, &n, &more);
    if (err != FERRY_OK) {
        bcall_error(c, err, NULL);
        return;
    }
    p = kv->out;
    p[0] = KV_ST_OK;
    be_put_u64(p + 1, kv->rev);
    p[9] = more ? 1 : 0;
    be_put_u32(p + 10, (uint32_t)n);
    bcall_reply(c, p, a.len);
}

static void
kv_count(struct kv_service *kv, struct bcall *c, const struct kv_req *r)
{
    uint8_t b[17];
    uint64_t n;
    bool more;
    ferry_err err = kv_walk(kv, r, 0, kv_count_each, NULL, &n, &more);

    if (err != FERRY_OK) {
        bcall_error(c, err, NULL);
        return;
    }
    b[0] = KV_ST_OK;
    be_put_u64(b + 1, kv->rev);
    be_put_u64(b + 9, n);
    bcall_reply(c, b, sizeof(b));
}

/* ---- the history ---- */

static struct kv_event *
kv_ring_at(const struct kv_service *kv, size_t i)
{
    return kv->ring[(kv->ring_head + i) % KV_HISTORY_EVENTS];
}

static void
kv_ring_drop_oldest(struct kv_service *kv)
{
    struct kv_event *e = kv->ring[kv->ring_head];

    kv->ring_bytes -= (uint64_t)e->klen + e->vlen;
    kv->ring[kv->ring_head] = NULL;
    kv->ring_head = (kv->ring_head + 1) % KV_HISTORY_EVENTS;
    kv->ring_n--;
    kv->oldest = e->meta.mod_rev + 1;
    free(e);
}

/* Records the event of a committed write; out of memory forgets the
 * history up to it (watches from before it are then compacted). */
static void
kv_ring_add(struct kv_service *kv, const struct kv_write *w)
{
    size_t vlen = w->op == KV_OP_PUT ? w->vlen : 0;
    struct kv_event *e = malloc(sizeof(*e) + w->klen + vlen);

    if (e == NULL) {
        while (kv->ring_n > 0) {
            kv_ring_drop_oldest(kv);
        }
        kv->oldest = w->meta.mod_rev + 1;
        return;
    }
    e->type = w->op == KV_OP_PUT ? 0 : 1;
    e->klen = (uint16_t)w->klen;
    e->vlen = (uint32_t)vlen;
    e->meta = w->meta;
    memcpy(e->data, w->key, w->klen);
    if (vlen > 0) {
        memcpy(e->data + w->klen, w->val, vlen);
    }
    while (kv->ring_n > 0 &&
           (kv->ring_n == KV_HISTORY_EVENTS ||
            kv->ring_bytes + w->klen + vlen > KV_HISTORY_BYTES)) {
        kv_ring_drop_oldest(kv);
    }
    kv->ring[(kv->ring_head + kv->ring_n) % KV_HISTORY_EVENTS] = e;
    kv->ring_n++;
    kv->ring_bytes += (uint64_t)w->klen + vlen;
}

/* Index of the first event at or after rev (ring_n when none). */
static size_t
kv_ring_find(const struct kv_service *kv, uint64_t rev)
{
    size_t lo = 0, hi = kv->ring_n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_ring_at(kv, mid)->meta.mod_rev < rev) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Builds the WATCH reply of events from rev matching r at kv->out: its
 * size in *len, the events in *n. false when out of memory. */
static bool
kv_watch_collect(struct kv_service *kv, const struct kv_req *r, uint64_t rev,
                 size_t *len, uint32_t *n)
{
    size_t off = 13;
    uint32_t cnt = 0;
    uint8_t *p = kv_out(kv, off);

    if (p == NULL) {
        return false;
    }
    for (size_t i = kv_ring_find(kv, rev);
         i < kv->ring_n && cnt < r->max_events; i++) {
        struct kv_event *e = kv_ring_at(kv, i);
        struct slice k = {e->data, e->klen};

        if (!kv_codec_in_range(r, k)) {
            continue;
        }
        p = kv_out(kv, off + KV_EVENT_HEAD + e->klen + e->vlen);
        if (p == NULL) {
            return false;
        }
        off += kv_codec_write_entry(p + off, true, e->type, k, &e->meta,
                                    (struct slice){e->data + e->klen, e->vlen});
        cnt++;
    }
    p = kv->out;
    p[0] = KV_ST_OK;
    be_put_u64(p + 1, kv->rev);
    be_put_u32(p + 9, cnt);
    *len = off;
    *n = cnt;
    return true;
}

/* ---- watch ---- */

static void
kv_watcher_free(struct kv_watcher *w)
{
    struct kv_service *kv = w->kv;

    loop_timer_stop(kv->loop, &w->timer);
    list_remove(&w->node);
    kv->stats.watchers--;
    free(w);
}

/* Answers a held watcher with what it may see now (maybe nothing). */
static void
kv_watcher_answer(struct kv_watcher *w)
{
    struct kv_service *kv = w->kv;
    size_t len;
    uint32_t n;

    if (w->from < kv->oldest) {
        /* The history moved past it while it waited. */
        char msg[96];

        kv->stats.compacted++;
        snprintf(msg, sizeof(msg),
                 "revision %llu compacted, oldest kept is "
                 "%llu",
                 (unsigned long long)w->from, (unsigned long long)kv->oldest);
        broker_answer_error(kv->b, w->handle, FERRY_EINVALID_ARGUMENT, msg);
    } else if (!kv_watch_collect(kv, &w->req, w->from, &len, &n)) {
        broker_answer_error(kv->b, w->handle, FERRY_ENOMEM, NULL);
    } else {
        kv->stats.watch_events += n;
        broker_answer(kv->b, w->handle, FERRY_OK, kv->out, len);
    }
    kv_watcher_free(w);
}

static void
kv_watcher_timeout(struct timer *t)
{
    kv_watcher_answer(container_of(t, struct kv_watcher, timer));
}

/* After the commits of a loop turn: watchers with something to see. */
static void
kv_check_cb(uv_check_t *h)
{
    struct kv_service *kv = h->data;
    struct list *n, *next;

    uv_check_stop(h);
    kv->check_on = false;
    for (n = kv->watchers.next; n != &kv->watchers; n = next) {
        struct kv_watcher *w = container_of(n, struct kv_watcher, node);
        size_t i;

        next = n->next;
        for (i = kv_ring_find(kv, w->from); i < kv->ring_n; i++) {
            struct kv_event *e = kv_ring_at(kv, i);
            if (kv_codec_in_range(&w->req, (struct slice){e->data, e->klen})) {
                break;
            }
        }
        if (i < kv->ring_n || w->from < kv->oldest) {
            kv_watcher_answer(w);
        }
    }
}

static void
kv_watch(struct kv_service *kv, struct bcall *c, const struct kv_req *r)
{
    uint64_t from = r->from_rev == 0 ? kv->rev + 1 : r->from_rev;
    uint64_t now, when;
    struct kv_watcher *w;
    size_t len;
    uint32_t n;

    if (from < kv->oldest) {
        char msg[96];

        kv->stats.compacted++;
        snprintf(msg, sizeof(msg),
                 "revision %llu compacted, oldest kept is "
                 "%llu",
                 (unsigned long long)from, (unsigned long long)kv->oldest);
        bcall_error(c, FERRY_EINVALID_ARGUMENT, msg);
        return;
    }
    if (from <= kv->rev || r->wait_ms == 0) {
        if (!kv_watch_collect(kv, r, from, &len, &n)) {
            bcall_error(c, FERRY_ENOMEM, NULL);
            return;
        }
        if (n > 0 || r->wait_ms == 0) {
            kv->stats.watch_events += n;
            bcall_reply(c, kv->out, len);
            return;
        }
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    w->kv = kv;
    w->req = *r;
    memcpy(w->keybuf, r->key.p, r->key.len);
    w->req.key.p = w->keybuf;
    w->from = from;
    timer_init(&w->timer, kv_watcher_timeout);
    /* An empty answer before the request's deadline rather than the
     * broker's DEADLINE error. */
    now = loop_now(kv->loop);
    when = now + r->wait_ms;
    if (c->deadline > now) {
        uint64_t left = c->deadline - now;
        uint64_t margin = left / 10 < 100 ? left / 10 : 100;
        if (when > c->deadline - margin) {
            when = c->deadline - margin;
        }
    }
    if (loop_timer_start(kv->loop, &w->timer, when) != FERRY_OK) {
        free(w);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    w->handle = bcall_hold(c);
    if (w->handle == 0) {
        loop_timer_stop(kv->loop, &w->timer);
        free(w);
        return;
    }
    list_push_back(&kv->watchers, &w->node);
    kv->stats.watchers++;
}

/* ---- writes ---- */

static struct kv_write *
kv_write_get(struct kv_service *kv)
{
    struct kv_write *w = kv->free_writes;

    if (w != NULL) {
        kv->free_writes = w->next_free;
        kv->n_free--;
        return w;
    }
    w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->kv = kv;
    }
    return w;
}

static void
kv_write_put(struct kv_service *kv, struct kv_write *w)
{
    if (kv->n_free >= KV_POOL_MAX || w->vcap > 65536) {
        free(w->val);
        free(w);
        return;
    }
    w->next_free = kv->free_writes;
    kv->free_writes = w;
    kv->n_free++;
}

/* The writer thread's part: the stored value from the old one and rev. */
static enum store_hook_act
kv_hook(void *arg, const struct store_val *old, uint64_t rev,
        struct store_hook_ctx *ctx)
{
    struct kv_write *w = arg;
    struct kv_meta om = {0, 0, 0};
    struct slice ov;
    bool exists =
        old != NULL && kv_codec_read_stored(old->data, old->len, &om, &ov);
    uint8_t *p;

    w->cur_mod_rev = exists ? om.mod_rev : 0;
    if (w->cond == KV_COND_ABSENT && exists) {
        w->status = KV_ST_EXISTS;
        return STORE_HOOK_REFUSE;
    }
    if (w->cond == KV_COND_REV && w->cur_mod_rev != w->want_rev) {
        w->status = KV_ST_EXISTS;
        return STORE_HOOK_REFUSE;
    }
    if (w->op == KV_OP_DELETE) {
        if (!exists) {
            w->status = KV_ST_NOT_FOUND;
            return STORE_HOOK_REFUSE;
        }
        w->status = KV_ST_OK;
        w->meta = (struct kv_meta){0, rev, 0};
        return STORE_HOOK_DELETE;
    }
    w->meta.create_rev = exists ? om.create_rev : rev;
    w->meta.mod_rev = rev;
    w->meta.version = exists ? om.version + 1 : 1;
    w->status = KV_ST_OK;
    p = store_hook_value(ctx, KV_META + w->vlen);
    if (p != NULL) {
        kv_codec_write_meta(p, &w->meta);
        if (w->vlen > 0) {
            memcpy(p + KV_META, w->val, w->vlen);
        }
    }
    return STORE_HOOK_PUT;
}

static void kv_maybe_free(struct kv_service *kv);

static void
kv_write_done(void *arg, const struct store_result *res)
{
    struct kv_write *w = arg;
    struct kv_service *kv = w->kv;
    uint8_t b[9];

    kv->stats.writes_pending--;
    switch (res->status) {
    case STORE_COMMITTED:
        /* Callbacks run in commit order: revisions only go up. */
        kv->rev = res->rev;
        if (w->op == KV_OP_PUT) {
            kv->stats.puts++;
        } else {
            kv->stats.deletes++;
        }
        kv_ring_add(kv, w);
        /* ferry.kv.<key> for subscribers, when the key makes a valid
         * subject (topic/topic.h). */
        topic_emit_event(kv->loop->topics, TOPIC_EV_KV,
                         (struct slice){w->key, w->klen}, NULL, "%s %llu",
                         w->op == KV_OP_PUT ? "put" : "delete",
                         (unsigned long long)res->rev);
        b[0] = KV_ST_OK;
        be_put_u64(b + 1, res->rev);
        broker_answer(kv->b, w->handle, FERRY_OK, b, sizeof(b));
        if (!kv->check_on && !list_is_empty(&kv->watchers)) {
            uv_check_start(&kv->check, kv_check_cb);
            kv->check_on = true;
        }
        break;
    case STORE_REFUSED:
        b[0] = w->status;
        if (w->status == KV_ST_EXISTS) {
            kv->stats.cas_failed++;
            be_put_u64(b + 1, w->cur_mod_rev);
        } else {
            kv->stats.not_found++;
            be_put_u64(b + 1, kv->rev);
        }
        broker_answer(kv->b, w->handle, FERRY_OK, b, sizeof(b));
        break;
    case STORE_FAILED:
        kv->stats.write_errors++;
        broker_answer_error(kv->b, w->handle, res->err, NULL);
        break;
    }
    kv_write_put(kv, w);
    kv_maybe_free(kv);
}

static void
kv_write(struct kv_service *kv, struct bcall *c, const struct kv_req *r)
{
    struct kv_write *w;
    struct store_batch *b;

    if (r->op == KV_OP_PUT && store_space_low(kv->st)) {
        /* The room left is for deletes, which free it. */
        kv->stats.write_errors++;
        bcall_error(c, FERRY_ENO_SPACE,
                    "the store is nearly full: puts wait until deletes free "
                    "room");
        return;
    }
    w = kv_write_get(kv);
    if (w == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    w->op = r->op;
    w->cond = r->cond;
    w->want_rev = r->rev;
    memcpy(w->key, r->key.p, r->key.len);
    w->klen = r->key.len;
    w->vlen = 0;
    if (r->op == KV_OP_PUT) {
        if (r->value.len > w->vcap) {
            uint8_t *p = realloc(w->val, r->value.len);
            if (p == NULL) {
                goto out_nomem;
            }
            w->val = p;
            w->vcap = r->value.len;
        }
        if (r->value.len > 0) {
            memcpy(w->val, r->value.p, r->value.len);
        }
        w->vlen = r->value.len;
    }
    b = store_batch_new();
    if (b == NULL) {
        goto out_nomem;
    }
    if (store_batch_revision(b, kv->t_meta, KV_REV_KEY,
                             sizeof(KV_REV_KEY) - 1) != FERRY_OK ||
        store_batch_hook(b, kv->t_kv, w->key, w->klen, kv_hook, w) !=
            FERRY_OK) {
        store_batch_free(b);
        goto out_nomem;
    }
    w->handle = bcall_hold(c);
    if (w->handle == 0) {
        store_batch_free(b);
        kv_write_put(kv, w);
        return;
    }
    kv->stats.writes_pending++;
    store_submit(kv->st, b, kv_write_done, w);
    return;

out_nomem:
    kv_write_put(kv, w);
    bcall_error(c, FERRY_ENOMEM, NULL);
}

/* ---- the backend ---- */

static void
kv_call(struct backend *be, struct bcall *c)
{
    struct kv_service *kv = kv_of(be);
    struct kv_req r;
    char err[KV_CODEC_ERR_SIZE];

    if (kv_codec_decode(c->key, c->payload, &r, err) != FERRY_OK) {
        kv->stats.bad++;
        bcall_error(c, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    kv->stats.ops[r.op]++;
    if (kv->closing) {
        bcall_error(c, FERRY_ESHUTTING_DOWN, NULL);
        return;
    }
    switch (r.op) {
    case KV_OP_GET:
        kv_get(kv, c, &r);
        break;
    case KV_OP_PUT:
    case KV_OP_DELETE:
        kv_write(kv, c, &r);
        break;
    case KV_OP_RANGE:
        kv_range(kv, c, &r);
        break;
    case KV_OP_COUNT:
        kv_count(kv, c, &r);
        break;
    case KV_OP_WATCH:
        kv_watch(kv, c, &r);
        break;
    }
}

/* A held call ended first: a watcher goes; a write still commits (its
 * answer is then dropped by the broker). */
static void
kv_cancelled(struct backend *be, uint64_t handle)
{
    struct kv_service *kv = kv_of(be);

    for (struct list *n = kv->watchers.next; n != &kv->watchers; n = n->next) {
        struct kv_watcher *w = container_of(n, struct kv_watcher, node);
        if (w->handle == handle) {
            kv_watcher_free(w);
            return;
        }
    }
}

static int
kv_describe(struct backend *be, const struct service *svc, json_t *obj)
{
    struct kv_service *kv = kv_of(be);

    return json_object_set_new(obj, "revision",
                               json_integer((json_int_t)kv->rev)) != 0
               ? -1
               : 0;
}

static const struct backend_ops kv_ops = {
    .kind = "kv",
    .call = kv_call,
    .cancelled = kv_cancelled,
    .describe = kv_describe,
};

ferry_err
kv_service_open(struct kv_service **out, struct broker *b, struct loop *l,
                struct store *st)
{
    struct kv_service *kv;
    int tk = store_table(st, KV_TABLE), tm = store_table(st, KV_META_TABLE);
    ferry_err err;

    if (tk < 0 || tm < 0) {
        log_error("ferry.kv: the store has no table '%s' or '%s'", KV_TABLE,
                  KV_META_TABLE);
        return FERRY_EINVALID_ARGUMENT;
    }
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL) {
        return FERRY_ENOMEM;
    }
    kv->ring = calloc(KV_HISTORY_EVENTS, sizeof(*kv->ring));
    if (kv->ring == NULL) {
        free(kv);
        return FERRY_ENOMEM;
    }
    kv->be.ops = &kv_ops;
    kv->b = b;
    kv->loop = l;
    kv->st = st;
    kv->t_kv = (unsigned)tk;
    kv->t_meta = (unsigned)tm;
    list_init(&kv->watchers);
    err = store_get_counter(st, kv->t_meta, KV_REV_KEY, sizeof(KV_REV_KEY) - 1,
                            &kv->rev);
    if (err != FERRY_OK) {
        goto out_free;
    }
    /* The history starts empty: nothing before now can be watched. */
    kv->oldest = kv->rev + 1;
    err = broker_add_backend(b, KV_SERVICE_NAME, &kv->be);
    if (err != FERRY_OK) {
        goto out_free;
    }
    uv_check_init(&l->uv, &kv->check);
    kv->check.data = kv;
    *out = kv;
    return FERRY_OK;

out_free:
    free(kv->ring);
    free(kv);
    return err;
}

static void
kv_check_closed(uv_handle_t *h)
{
    struct kv_service *kv = h->data;

    while (kv->free_writes != NULL) {
        struct kv_write *w = kv->free_writes;
        kv->free_writes = w->next_free;
        free(w->val);
        free(w);
    }
    while (kv->ring_n > 0) {
        kv_ring_drop_oldest(kv);
    }
    free(kv->ring);
    free(kv->out);
    free(kv);
}

/* Frees kv once it is closing and no write waits for its callback. */
static void
kv_maybe_free(struct kv_service *kv)
{
    if (kv->closing && kv->stats.writes_pending == 0) {
        uv_close((uv_handle_t *)&kv->check, kv_check_closed);
    }
}

void
kv_service_close(struct kv_service *kv)
{
    if (kv == NULL) {
        return;
    }
    kv->closing = true;
    if (kv->check_on) {
        uv_check_stop(&kv->check);
        kv->check_on = false;
    }
    while (!list_is_empty(&kv->watchers)) {
        kv_watcher_answer(
            container_of(kv->watchers.next, struct kv_watcher, node));
    }
    kv_maybe_free(kv);
}

const struct kv_stats *
kv_service_stats(struct kv_service *kv)
{
    kv->stats.history_events = kv->ring_n;
    kv->stats.history_bytes = kv->ring_bytes;
    kv->stats.oldest_rev = kv->oldest;
    kv->stats.rev = kv->rev;
    return &kv->stats;
}

json_t *
kv_service_stats_json(struct kv_service *kv)
{
    const struct kv_stats *s = kv_service_stats(kv);
    json_t *obj = json_object(), *ops = json_object();
    int bad = obj == NULL || ops == NULL;

    for (unsigned op = 1; op <= KV_OP_MAX && !bad; op++) {
        bad |= json_object_set_new(ops, kv_codec_op_name(op),
                                   json_integer((json_int_t)s->ops[op]));
    }
#define KV_J(name)                                                             \
    bad = bad ||                                                               \
          json_object_set_new(obj, #name, json_integer((json_int_t)s->name))
    KV_J(rev);
    KV_J(puts);
    KV_J(deletes);
    KV_J(cas_failed);
    KV_J(not_found);
    KV_J(bad);
    KV_J(write_errors);
    KV_J(writes_pending);
    KV_J(watchers);
    KV_J(watch_events);
    KV_J(compacted);
    KV_J(history_events);
    KV_J(history_bytes);
    KV_J(oldest_rev);
#undef KV_J
    if (bad || json_object_set_new(obj, "ops", ops) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static void
kv_metric(FILE *f, const char *name, const char *type, const char *help,
          uint64_t v)
{
    fprintf(f,
            "# HELP ferry_kv_%s %s\n# TYPE ferry_kv_%s %s\nferry_kv_%s %llu\n",
            name, help, name, type, name, (unsigned long long)v);
}

void
kv_service_metrics(struct kv_service *kv, FILE *f)
{
    const struct kv_stats *s = kv_service_stats(kv);

    fprintf(f, "# HELP ferry_kv_requests_total ferry.kv requests by op.\n"
               "# TYPE ferry_kv_requests_total counter\n");
    for (unsigned op = 1; op <= KV_OP_MAX; op++) {
        fprintf(f, "ferry_kv_requests_total{op=\"%s\"} %llu\n",
                kv_codec_op_name(op), (unsigned long long)s->ops[op]);
    }
    kv_metric(f, "revision", "gauge", "The store revision of ferry.kv.",
              s->rev);
    kv_metric(f, "puts_total", "counter", "Puts committed.", s->puts);
    kv_metric(f, "deletes_total", "counter", "Deletes committed.", s->deletes);
    kv_metric(f, "compare_failed_total", "counter",
              "Writes answered EXISTS (a condition failed).", s->cas_failed);
    kv_metric(f, "not_found_total", "counter",
              "Gets and deletes answered NOT_FOUND.", s->not_found);
    kv_metric(f, "write_errors_total", "counter",
              "Writes the store failed (NO_SPACE, SYS).", s->write_errors);
    kv_metric(f, "writes_pending", "gauge", "Writes waiting for their commit.",
              s->writes_pending);
    kv_metric(f, "watchers", "gauge", "Watches held now.", s->watchers);
    kv_metric(f, "watch_events_total", "counter", "Events sent to watchers.",
              s->watch_events);
    kv_metric(f, "watch_compacted_total", "counter",
              "Watches refused: from_rev older than the history.",
              s->compacted);
    kv_metric(f, "history_events", "gauge", "Events in the watch history.",
              s->history_events);
    kv_metric(f, "history_bytes", "gauge",
              "Key and value bytes in the watch history.", s->history_bytes);
}

/* ---- handover ---- */

/* The writer's part of kv_service_raise_rev: the counter becomes the
 * higher of itself and r->want (rewritten as it is when higher: a hook
 * has no "leave it" act). */
static enum store_hook_act
kv_raise_hook(void *arg, const struct store_val *old, uint64_t rev,
              struct store_hook_ctx *ctx)
{
    struct kv_rev_raise *r = arg;
    uint64_t cur = old != NULL && old->len == 8 ? be_get_u64(old->data) : 0;
    uint8_t *p;

    (void)rev;
    r->got = cur > r->want ? cur : r->want;
    p = store_hook_value(ctx, 8);
    if (p != NULL) {
        be_put_u64(p, r->got);
    }
    return STORE_HOOK_PUT;
}

ferry_err
kv_service_raise_rev(struct kv_service *kv, struct store_batch *b,
                     struct kv_rev_raise *r)
{
    return store_batch_hook(b, kv->t_meta, KV_REV_KEY, sizeof(KV_REV_KEY) - 1,
                            kv_raise_hook, r);
}

void
kv_service_imported(struct kv_service *kv, uint64_t rev)
{
    if (rev > kv->rev) {
        kv->rev = rev;
    }
    while (kv->ring_n > 0) {
        kv_ring_drop_oldest(kv);
    }
    kv->oldest = kv->rev + 1;
    if (!kv->check_on && !list_is_empty(&kv->watchers)) {
        uv_check_start(&kv->check, kv_check_cb);
        kv->check_on = true;
    }
}
