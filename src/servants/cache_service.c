/* SPDX-License-Identifier: MIT */
/*
 * cache_service.c - ferry.cache: the cache of src/cache/ as an in-daemon
 * backend (see cache_service.h).
 *
 * Every request is answered at once, inside call(): the payload is
 * decoded in place (servants/cache_codec.c), the cache does the work, and
 * the reply is written into the caller's output. A GET hit asks the
 * broker for room for the whole reply and writes the 13-byte head and
 * the value straight into it: the value is copied once, from the cache
 * to the caller's buffer, and nothing is allocated. GET_MANY builds its
 * reply in one buffer the service keeps, since its size is known only
 * after the lookups.
 *
 * Time: the cache runs on the loop's monotonic milliseconds; a TTL
 * becomes now + ttl_ms. A timer every CACHE_SERVICE_RECLAIM_MS frees
 * expired and flushed items a budget at a time (cache_reclaim), and
 * after heavy eviction or freeing hands the freed memory back to the
 * system with malloc_trim(0), at most once a second: glibc keeps freed
 * small chunks in its bins otherwise, and a cache whose value sizes
 * shift would hold its old size's memory as well as the new one's.
 */
#include "servants/cache_service.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/backend.h"
#include "cache/cache.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"
#include "servants/cache_codec.h"

/* Freed bytes (evicted, expired, deleted) that call for a trim: the
 * larger of this and an eighth of the cap. */
#define CACHE_SERVICE_TRIM_MIN (8u << 20)
#define CACHE_SERVICE_TRIM_EVERY_MS 1000

/* Owned by servants (servants.c). */
struct cache_service {
    struct backend be;        /* registered as ferry.cache */
    struct loop *loop;        /* borrowed */
    struct cache *cache;      /* owned */
    struct timer tick;        /* the reclaim step, every RECLAIM_MS */
    int64_t wall_offset_ms;   /* unix ms - loop ms, taken at open */
    struct buf many;          /* GET_MANY's reply, reused */
    uint64_t writes;          /* writes since the last tick */
    uint64_t peak_bytes;      /* most bytes seen since the last trim */
    uint64_t evicted_at_trim; /* evicted_bytes at the last trim */
    int64_t last_trim;        /* loop ms of the last trim */
    uint64_t trims;           /* malloc_trim calls */
    uint64_t reclaimed;       /* items the reclaim steps freed */
    uint64_t invalid;         /* requests refused as malformed */
    uint64_t too_big;         /* TOO_BIG answers */
    uint64_t no_memory;       /* OVERLOADED "cache memory full" */
    uint64_t not_number;      /* incr/decr on a value that is no number */
    uint64_t get_many_keys;   /* keys asked for by GET_MANY */
    uint32_t item_max;        /* cache_item_max at open */
    uint32_t quiet_ticks;     /* steps without writes or reclaims since
                                 the last check for a trim */
};

struct cache *
cache_service_cache(struct cache_service *cs)
{
    return cs->cache;
}

int64_t
cache_service_now_ms(const struct cache_service *cs)
{
    return (int64_t)loop_now(cs->loop);
}

int64_t
cache_service_unix_to_ms(const struct cache_service *cs, int64_t unix_s)
{
    return unix_s * 1000 - cs->wall_offset_ms;
}

void
cache_service_after_write(struct cache_service *cs)
{
    cs->writes++;
}

/* The absolute expiry of a TTL given now; 0 stays "never". */
static int64_t
cache_service_expiry(int64_t now, uint32_t ttl_ms)
{
    return ttl_ms == 0 ? 0 : now + (int64_t)ttl_ms;
}

/* Answers the statuses that are errors, not reply statuses. */
static void
cache_service_fail(struct cache_service *cs, struct bcall *c,
                   enum cache_status st, const struct cache_req *r)
{
    char msg[160];

    switch (st) {
    case CACHE_TOO_LARGE:
        cs->too_big++;
        snprintf(msg, sizeof(msg),
                 "ferry.cache: %s of a %zu-byte key and %zu-byte value: the "
                 "item is over cache_item_max (%u bytes) or the cache",
                 cache_codec_op_name(r->op), r->key.len, r->value.len,
                 (unsigned)cs->item_max);
        bcall_error(c, FERRY_ETOO_BIG, msg);
        return;
    case CACHE_NO_MEMORY:
        cs->no_memory++;
        bcall_error(c, FERRY_EOVERLOADED, "cache memory full");
        return;
    case CACHE_NOT_NUMBER:
        cs->not_number++;
        snprintf(msg, sizeof(msg),
                 "ferry.cache: %s of a value that is not a decimal number "
                 "(up to 20 digits, at most 2^64-1)",
                 cache_codec_op_name(r->op));
        bcall_error(c, FERRY_EINVALID_ARGUMENT, msg);
        return;
    case CACHE_BAD_KEY:
        cs->invalid++;
        bcall_error(c, FERRY_EINVALID_ARGUMENT,
                    "ferry.cache: key must be 1 to 250 bytes");
        return;
    default:
        bcall_error(c, FERRY_EINVALID_ARGUMENT, cache_status_name(st));
        return;
    }
}

/* A reply of one status byte. */
static void
cache_service_status(struct bcall *c, uint8_t status)
{
    bcall_reply(c, &status, 1);
}

/* A GET or GAT hit: head and value written straight into the reply. */
static void
cache_service_hit(struct bcall *c, const struct cache_view *v)
{
    uint8_t *p = bcall_reply_prepare(c, CACHE_CODEC_HIT_HEAD + v->len);

    if (p == NULL) {
        return;
    }
    cache_codec_write_hit(p, v->flags, v->version);
    if (v->len > 0) {
        memcpy(p + CACHE_CODEC_HIT_HEAD, v->val, v->len);
    }
    bcall_reply_commit(c);
}

/* Answers a store (set ... prepend, cas): OK with the new version, or
 * its status, or its error. */
static void
cache_service_stored(struct cache_service *cs, struct bcall *c,
                     const struct cache_req *r, enum cache_status st,
                     uint64_t version)
{
    uint8_t out[9];

    cs->writes++;
    switch (st) {
    case CACHE_STORED:
        bcall_reply(c, out, cache_codec_write_u64(out, CACHE_ST_OK, version));
        return;
    case CACHE_NOT_STORED:
        cache_service_status(c, CACHE_ST_NOT_STORED);
        return;
    case CACHE_EXISTS:
        cache_service_status(c, CACHE_ST_EXISTS);
        return;
    case CACHE_NOT_FOUND:
        cache_service_status(c, CACHE_ST_NOT_FOUND);
        return;
    default:
        cache_service_fail(cs, c, st, r);
        return;
    }
}

struct cache_many_ctx {
    struct buf *out; /* borrowed: the reply being built */
    bool failed;     /* out of memory */
};

static void
cache_service_many_cb(void *arg, size_t i, enum cache_status st,
                      const struct cache_view *v)
{
    struct cache_many_ctx *m = arg;
    uint8_t *p;

    if (m->failed) {
        return;
    }
    if (v == NULL) {
        p = buf_prepare(m->out, 1);
        if (p == NULL) {
            m->failed = true;
            return;
        }
        buf_commit(m->out, cache_codec_write_many_entry(p, false, 0, 0, 0));
        return;
    }
    p = buf_prepare(m->out, CACHE_CODEC_MANY_HIT_HEAD + v->len);
    if (p == NULL) {
        m->failed = true;
        return;
    }
    cache_codec_write_many_entry(p, true, v->flags, v->version,
                                 (uint32_t)v->len);
    if (v->len > 0) {
        memcpy(p + CACHE_CODEC_MANY_HIT_HEAD, v->val, v->len);
    }
    buf_commit(m->out, CACHE_CODEC_MANY_HIT_HEAD + v->len);
}

/* GET_MANY: the keys are looked up one by one (each a cache_get), the
 * entries appended to cs->many, sent with one copy. */
static void
cache_service_get_many(struct cache_service *cs, struct bcall *c,
                       const struct cache_req *r, int64_t now)
{
    const void *keys[CACHE_CODEC_MANY_MAX];
    size_t klens[CACHE_CODEC_MANY_MAX];
    struct slice rest = r->keys, k;
    struct cache_many_ctx m = {&cs->many, false};
    uint8_t *p;
    size_t n = 0;

    while (n < r->n_keys && cache_codec_next_key(&rest, &k)) {
        keys[n] = k.p;
        klens[n] = k.len;
        n++;
    }
    cs->get_many_keys += n;
    buf_clear(&cs->many);
    p = buf_prepare(&cs->many, 3);
    if (p == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    p[0] = CACHE_ST_OK;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)n;
    buf_commit(&cs->many, 3);
    cache_get_many(cs->cache, n, keys, klens, now, cache_service_many_cb, &m);
    if (m.failed) {
        buf_shrink(&cs->many, 0);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    bcall_reply(c, buf_head(&cs->many), buf_len(&cs->many));
    /* A big reply's buffer is not kept for the next one. */
    buf_clear(&cs->many);
    buf_shrink(&cs->many, 64 * 1024);
}

static void
cache_service_call(struct backend *be, struct bcall *c)
{
    struct cache_service *cs = container_of(be, struct cache_service, be);
    struct cache *ch = cs->cache;
    struct cache_req r;
    struct cache_view v;
    enum cache_status st;
    char err[CACHE_CODEC_ERR_SIZE];
    uint8_t out[9];
    uint64_t version = 0, num = 0;
    int64_t now = (int64_t)loop_now(cs->loop);
    const uint8_t *k;

    if (cache_codec_decode(c->key, c->payload, &r, err) != FERRY_OK) {
        cs->invalid++;
        bcall_error(c, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    k = r.key.p;
    switch (r.op) {
    case CACHE_OP_GET:
        st = cache_get(ch, k, r.key.len, now, &v);
        if (st == CACHE_OK) {
            cache_service_hit(c, &v);
        } else if (st == CACHE_NOT_FOUND) {
            cache_service_status(c, CACHE_ST_NOT_FOUND);
        } else {
            cache_service_fail(cs, c, st, &r);
        }
        return;
    case CACHE_OP_GAT:
        st = cache_gat(ch, k, r.key.len, cache_service_expiry(now, r.ttl_ms),
                       now, &v);
        if (st == CACHE_OK) {
            cache_service_hit(c, &v);
        } else if (st == CACHE_NOT_FOUND) {
            cache_service_status(c, CACHE_ST_NOT_FOUND);
        } else {
            cache_service_fail(cs, c, st, &r);
        }
        return;
    case CACHE_OP_GET_MANY:
        cache_service_get_many(cs, c, &r, now);
        return;
    case CACHE_OP_SET:
        st = cache_set(ch, k, r.key.len, r.value.p, r.value.len, r.flags,
                       cache_service_expiry(now, r.ttl_ms), now, &version);
        break;
    case CACHE_OP_ADD:
        st = cache_add(ch, k, r.key.len, r.value.p, r.value.len, r.flags,
                       cache_service_expiry(now, r.ttl_ms), now, &version);
        break;
    case CACHE_OP_REPLACE:
        st = cache_replace(ch, k, r.key.len, r.value.p, r.value.len, r.flags,
                           cache_service_expiry(now, r.ttl_ms), now, &version);
        break;
    case CACHE_OP_APPEND:
        st = cache_append(ch, k, r.key.len, r.value.p, r.value.len, now,
                          &version);
        break;
    case CACHE_OP_PREPEND:
        st = cache_prepend(ch, k, r.key.len, r.value.p, r.value.len, now,
                           &version);
        break;
    case CACHE_OP_CAS:
        st = cache_cas(ch, k, r.key.len, r.value.p, r.value.len, r.flags,
                       cache_service_expiry(now, r.ttl_ms), r.cas, now,
                       &version);
        break;
    case CACHE_OP_DELETE:
        cs->writes++;
        st = cache_delete(ch, k, r.key.len, now);
        cache_service_status(c,
                             st == CACHE_OK ? CACHE_ST_OK : CACHE_ST_NOT_FOUND);
        return;
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        cs->writes++;
        st = r.op == CACHE_OP_INCR
                 ? cache_incr(ch, k, r.key.len, r.delta, now, &num)
                 : cache_decr(ch, k, r.key.len, r.delta, now, &num);
        if (st == CACHE_OK) {
            bcall_reply(c, out, cache_codec_write_u64(out, CACHE_ST_OK, num));
        } else if (st == CACHE_NOT_FOUND) {
            cache_service_status(c, CACHE_ST_NOT_FOUND);
        } else {
            cache_service_fail(cs, c, st, &r);
        }
        return;
    case CACHE_OP_TOUCH:
        st = cache_touch(ch, k, r.key.len, cache_service_expiry(now, r.ttl_ms),
                         now);
        cache_service_status(c,
                             st == CACHE_OK ? CACHE_ST_OK : CACHE_ST_NOT_FOUND);
        return;
    case CACHE_OP_FLUSH:
        cs->writes++;
        cache_flush(ch, now + (int64_t)r.delay_ms, now);
        cache_service_status(c, CACHE_ST_OK);
        return;
    default:
        /* The codec refuses every other op. */
        bcall_error(c, FERRY_EINVALID_ARGUMENT, "ferry.cache: unknown op");
        return;
    }
    cache_service_stored(cs, c, &r, st, version);
}

/* ferry.services shows the service's stats under "cache" (what `ferry
 * cache stats` prints). */
static int
cache_service_describe(struct backend *be, const struct service *svc,
                       json_t *obj)
{
    struct cache_service *cs = container_of(be, struct cache_service, be);
    json_t *st = cache_service_stats_json(cs);

    return st == NULL || json_object_set_new(obj, "cache", st) != 0 ? -1 : 0;
}

static const struct backend_ops cache_service_ops = {
    .kind = "cache",
    .call = cache_service_call,
    .cancelled = NULL,
    .describe = cache_service_describe,
};

/* Whether enough was freed since the last trim to give it back. */
static bool
cache_service_wants_trim(struct cache_service *cs, const struct cache_stats *st,
                         int64_t now)
{
    uint64_t freed, need = cache_max_bytes(cs->cache) / 8;

    if (need < CACHE_SERVICE_TRIM_MIN) {
        need = CACHE_SERVICE_TRIM_MIN;
    }
    if (st->bytes > cs->peak_bytes) {
        cs->peak_bytes = st->bytes;
    }
    freed = (st->evicted_bytes - cs->evicted_at_trim) +
            (cs->peak_bytes - st->bytes);
    return freed >= need && now - cs->last_trim >= CACHE_SERVICE_TRIM_EVERY_MS;
}

/* The reclaim step: frees a budget of dead items, then trims when due. */
static void
cache_service_tick(struct timer *t)
{
    struct cache_service *cs = container_of(t, struct cache_service, tick);
    int64_t now = (int64_t)loop_now(cs->loop);
    struct cache_stats st;

    size_t freed = cache_reclaim(cs->cache, now, CACHE_SERVICE_RECLAIM_BUDGET);

    cs->reclaimed += freed;
    /* Memory is freed by writes (evictions, deletes), by the reclaim
     * just run, and by reads that find an item expired: with none of the
     * first two the check waits for a tenth quiet step, for the last. */
    if (cs->writes == 0 && freed == 0 && ++cs->quiet_ticks < 10) {
        goto out_rearm;
    }
    cs->quiet_ticks = 0;
    cache_stats_get(cs->cache, &st);
    if (cache_service_wants_trim(cs, &st, now)) {
        malloc_trim(0);
        cs->trims++;
        cs->last_trim = now;
        cs->evicted_at_trim = st.evicted_bytes;
        cs->peak_bytes = st.bytes;
    }
    cs->writes = 0;
out_rearm:
    if (loop_timer_start(cs->loop, &cs->tick,
                         (uint64_t)now + CACHE_SERVICE_RECLAIM_MS) !=
        FERRY_OK) {
        log_warn("'%s': reclaim timer not armed (out of memory): expired "
                 "items are freed on access only",
                 CACHE_SERVICE_NAME);
    }
}

ferry_err
cache_service_open(struct cache_service **out, struct broker *b, struct loop *l,
                   const struct config *cfg)
{
    struct cache_service *cs;
    struct cache_config cc = {
        .max_bytes = (size_t)cfg->cache_max_bytes,
        .item_max = cfg->cache_item_max,
    };
    struct timespec ts;
    ferry_err err;

    if (getrandom(cc.seed, sizeof(cc.seed), 0) != (ssize_t)sizeof(cc.seed)) {
        /* No entropy yet: a seed from the clock still varies per run. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        cc.seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u;
        cc.seed[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&cc;
    }
    cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        return FERRY_ENOMEM;
    }
    cs->be.ops = &cache_service_ops;
    cs->loop = l;
    cs->item_max = cfg->cache_item_max;
    buf_init(&cs->many);
    cs->cache = cache_new(&cc);
    if (cs->cache == NULL) {
        err = FERRY_ENOMEM;
        goto out_free;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    cs->wall_offset_ms =
        (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)loop_now(l);
    cs->last_trim = (int64_t)loop_now(l);
    timer_init(&cs->tick, cache_service_tick);
    err =
        loop_timer_start(l, &cs->tick, loop_now(l) + CACHE_SERVICE_RECLAIM_MS);
    if (err != FERRY_OK) {
        goto out_cache;
    }
    err = broker_add_backend(b, CACHE_SERVICE_NAME, &cs->be);
    if (err != FERRY_OK) {
        goto out_timer;
    }
    *out = cs;
    return FERRY_OK;

out_timer:
    loop_timer_stop(l, &cs->tick);
out_cache:
    cache_free(cs->cache);
out_free:
    buf_release(&cs->many);
    free(cs);
    return err;
}

void
cache_service_close(struct cache_service *cs)
{
    if (cs == NULL) {
        return;
    }
    loop_timer_stop(cs->loop, &cs->tick);
    cache_free(cs->cache);
    buf_release(&cs->many);
    free(cs);
}

/* Adds key: u64 to obj; true when out of memory. */
static bool
cache_service_set_u64(json_t *obj, const char *key, uint64_t v)
{
    return json_object_set_new(obj, key, json_integer((json_int_t)v)) != 0;
}

json_t *
cache_service_stats_json(const struct cache_service *cs)
{
    struct cache_stats st;
    json_t *obj = json_object(), *ops = json_object();
    uint64_t lookups;
    bool bad = obj == NULL || ops == NULL;

    cache_stats_get(cs->cache, &st);
    lookups = st.get_hits + st.get_misses;
    bad = bad || cache_service_set_u64(obj, "hits", st.get_hits) ||
          cache_service_set_u64(obj, "misses", st.get_misses) ||
          json_object_set_new(obj, "hit_ratio",
                              lookups == 0 ? json_null()
                                           : json_real((double)st.get_hits /
                                                       (double)lookups)) ||
          cache_service_set_u64(obj, "items", st.items) ||
          cache_service_set_u64(obj, "bytes", st.bytes) ||
          cache_service_set_u64(obj, "item_bytes", st.item_bytes) ||
          cache_service_set_u64(obj, "table_bytes", st.table_bytes) ||
          cache_service_set_u64(obj, "max_bytes", cache_max_bytes(cs->cache)) ||
          cache_service_set_u64(obj, "item_max", cs->item_max) ||
          cache_service_set_u64(obj, "evictions", st.evictions) ||
          cache_service_set_u64(obj, "evicted_bytes", st.evicted_bytes) ||
          cache_service_set_u64(obj, "expirations",
                                st.expired_lazy + st.expired_reclaimed) ||
          cache_service_set_u64(obj, "flushed", st.flushed) ||
          cache_service_set_u64(obj, "reclaimed", cs->reclaimed) ||
          cache_service_set_u64(obj, "trims", cs->trims) ||
          cache_service_set_u64(obj, "invalid", cs->invalid) ||
          cache_service_set_u64(obj, "too_big", cs->too_big) ||
          cache_service_set_u64(obj, "no_memory", cs->no_memory) ||
          cache_service_set_u64(obj, "not_number", cs->not_number) ||
          cache_service_set_u64(obj, "cas_mismatches", st.cas_badval);
    bad = bad || cache_service_set_u64(ops, "get", st.cmd_get) ||
          cache_service_set_u64(ops, "get_many_keys", cs->get_many_keys) ||
          cache_service_set_u64(ops, "set", st.cmd_set) ||
          cache_service_set_u64(ops, "add", st.cmd_add) ||
          cache_service_set_u64(ops, "replace", st.cmd_replace) ||
          cache_service_set_u64(ops, "append", st.cmd_append) ||
          cache_service_set_u64(ops, "prepend", st.cmd_prepend) ||
          cache_service_set_u64(ops, "cas", st.cmd_cas) ||
          cache_service_set_u64(ops, "delete", st.cmd_delete) ||
          cache_service_set_u64(ops, "incr", st.cmd_incr) ||
          cache_service_set_u64(ops, "decr", st.cmd_decr) ||
          cache_service_set_u64(ops, "touch", st.cmd_touch) ||
          cache_service_set_u64(ops, "flush", st.cmd_flush);
    if (bad || json_object_set_new(obj, "ops", ops) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static void
cache_service_family(FILE *f, const char *name, const char *type,
                     const char *help, uint64_t v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
            name, (unsigned long long)v);
}

void
cache_service_metrics(const struct cache_service *cs, FILE *f)
{
    struct cache_stats st;

    cache_stats_get(cs->cache, &st);
    const struct {
        const char *op;
        uint64_t n;
    } ops[] = {
        {"get", st.cmd_get},       {"set", st.cmd_set},
        {"add", st.cmd_add},       {"replace", st.cmd_replace},
        {"append", st.cmd_append}, {"prepend", st.cmd_prepend},
        {"cas", st.cmd_cas},       {"delete", st.cmd_delete},
        {"incr", st.cmd_incr},     {"decr", st.cmd_decr},
        {"touch", st.cmd_touch},   {"flush", st.cmd_flush},
    };

    cache_service_family(f, "ferry_cache_hits_total", "counter",
                         "ferry.cache lookups that found a live item",
                         st.get_hits);
    cache_service_family(f, "ferry_cache_misses_total", "counter",
                         "ferry.cache lookups that found nothing live",
                         st.get_misses);
    cache_service_family(f, "ferry_cache_evictions_total", "counter",
                         "live items dropped to make room", st.evictions);
    cache_service_family(f, "ferry_cache_expirations_total", "counter",
                         "items found expired (on access or by reclaim)",
                         st.expired_lazy + st.expired_reclaimed);
    cache_service_family(f, "ferry_cache_items", "gauge",
                         "items held (dead ones until reclaimed)", st.items);
    cache_service_family(f, "ferry_cache_bytes", "gauge",
                         "bytes counted against cache_max_bytes", st.bytes);
    cache_service_family(f, "ferry_cache_max_bytes", "gauge",
                         "the cache's cap (cache_max_bytes)",
                         cache_max_bytes(cs->cache));
    cache_service_family(f, "ferry_cache_trims_total", "counter",
                         "malloc_trim calls after heavy freeing", cs->trims);
    fprintf(f, "# HELP ferry_cache_ops_total ferry.cache operations by name\n"
               "# TYPE ferry_cache_ops_total counter\n");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        fprintf(f, "ferry_cache_ops_total{op=\"%s\"} %llu\n", ops[i].op,
                (unsigned long long)ops[i].n);
    }
}
