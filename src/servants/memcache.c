/* SPDX-License-Identifier: MIT */
/*
 * memcache.c - see memcache.h. Each command is parsed in place
 * (memcache_parse.c), run on the cache and answered straight into the
 * conn's output buffer: no allocation per command.
 */
#include "servants/memcache.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mem.h"
#include "servants/cache_service.h"

#define MC_REL_MAX 2592000 /* memcached: above, an exptime is absolute */
#define MC_VERSION_TEXT "1.6.18-ferry"

/* One face per ferryd; its conns find it here. */
static struct memcache_face *mc_face;

struct mc_conn {
    uint64_t swallow; /* bytes of a refused data block still to drop */
};

static size_t mc_bytes(struct conn *c, const uint8_t *p, size_t n,
                       size_t *need);
static void mc_closing(struct conn *c);

static ferry_err
mc_no_frame(struct conn *c, const struct frame *f)
{
    return FERRY_EPROTO;
}

static const struct conn_ops mc_ops = {
    .role = "memcache",
    .pause_on_high = true,
    .frame = mc_no_frame,
    .closing = mc_closing,
    .bytes = mc_bytes,
};

static void
mc_closing(struct conn *c)
{
    if (c->data != NULL && mc_face != NULL) {
        mc_face->conns_open--;
    }
    free(c->data);
    c->data = NULL;
}

static void
mc_out(struct conn *c, const void *p, size_t n)
{
    uint8_t *d = conn_out_prepare(c, n);

    if (d != NULL) {
        memcpy(d, p, n);
        conn_out_commit(c, n);
    }
}

static void
mc_str(struct conn *c, const char *s)
{
    mc_out(c, s, strlen(s));
}

/* Writes decimal v at d; returns its length. */
static size_t
mc_u64(char *d, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        d[i] = tmp[n - 1 - i];
    }
    return n;
}

/* memcached's exptime as the cache's absolute ms (0 never); *dead when it
 * is already past (a negative exptime). */
static int64_t
mc_expires(const struct memcache_face *f, int64_t exptime, int64_t now)
{
    int64_t at;

    if (exptime == 0) {
        return 0;
    }
    if (exptime < 0) {
        return now > 0 ? now : 1;
    }
    if (exptime <= MC_REL_MAX) {
        return now + exptime * 1000;
    }
    at = cache_service_unix_to_ms(f->cs, exptime);
    if (at <= now) {
        return now > 0 ? now : 1;
    }
    return at;
}

/* Seconds left, memcached's way: -1 for never. */
static int64_t
mc_ttl(int64_t expires, int64_t now)
{
    if (expires == 0) {
        return -1;
    }
    return expires <= now ? 0 : (expires - now + 999) / 1000;
}

/* ---- classic commands ---- */

static void
mc_value(struct conn *c, const uint8_t *key, size_t klen,
         const struct cache_view *v, bool with_cas)
{
    size_t n = 6 + klen + 1 + 10 + 1 + 20 + (with_cas ? 21 : 0) + 2 +
               v->len + 2;
    char *d = (char *)conn_out_prepare(c, n), *s = d;

    if (d == NULL) {
        return;
    }
    memcpy(d, "VALUE ", 6);
    d += 6;
    memcpy(d, key, klen);
    d += klen;
    *d++ = ' ';
    d += mc_u64(d, v->flags);
    *d++ = ' ';
    d += mc_u64(d, v->len);
    if (with_cas) {
        *d++ = ' ';
        d += mc_u64(d, v->version);
    }
    *d++ = '\r';
    *d++ = '\n';
    memcpy(d, v->val, v->len);
    d += v->len;
    *d++ = '\r';
    *d++ = '\n';
    conn_out_commit(c, (size_t)(d - s));
}

static void
mc_get(struct memcache_face *f, struct conn *c, const struct mc_cmd *m,
       int64_t now)
{
    const uint8_t *q = m->keys, *end = m->keys + m->keys_len;
    bool touch = m->kind == MC_GAT || m->kind == MC_GATS;
    bool with_cas = m->kind == MC_GETS || m->kind == MC_GATS;
    int64_t exp = touch ? mc_expires(f, m->exptime, now) : 0;

    while (q < end) {
        const uint8_t *s;
        struct cache_view v;
        enum cache_status st;
        while (q < end && *q == ' ') {
            q++;
        }
        s = q;
        while (q < end && *q != ' ') {
            q++;
        }
        if (q == s) {
            break;
        }
        st = touch ? cache_gat(f->cache, s, (size_t)(q - s), exp, now, &v)
                   : cache_get(f->cache, s, (size_t)(q - s), now, &v);
        if (st == CACHE_OK) {
            mc_value(c, s, (size_t)(q - s), &v, with_cas);
        }
    }
    mc_str(c, "END\r\n");
}

static void
mc_store_answer(struct conn *c, enum cache_status st, bool noreply)
{
    const char *a;

    switch (st) {
    case CACHE_STORED:
    case CACHE_OK:
        a = "STORED\r\n";
        break;
    case CACHE_NOT_STORED:
        a = "NOT_STORED\r\n";
        break;
    case CACHE_EXISTS:
        a = "EXISTS\r\n";
        break;
    case CACHE_NOT_FOUND:
        a = "NOT_FOUND\r\n";
        break;
    case CACHE_TOO_LARGE:
        a = "SERVER_ERROR object too large for cache\r\n";
        break;
    default:
        a = "SERVER_ERROR out of memory storing object\r\n";
        break;
    }
    if (!noreply) {
        mc_str(c, a);
    }
}

static enum cache_status
mc_store(struct memcache_face *f, enum mc_kind kind, const uint8_t *key,
         size_t klen, const uint8_t *val, size_t vlen, uint32_t flags,
         int64_t exp, uint64_t cas, int64_t now, uint64_t *ver)
{
    struct cache *ca = f->cache;

    switch (kind) {
    case MC_ADD:
        return cache_add(ca, key, klen, val, vlen, flags, exp, now, ver);
    case MC_REPLACE:
        return cache_replace(ca, key, klen, val, vlen, flags, exp, now, ver);
    case MC_APPEND:
        return cache_append(ca, key, klen, val, vlen, now, ver);
    case MC_PREPEND:
        return cache_prepend(ca, key, klen, val, vlen, now, ver);
    case MC_CAS:
        return cache_cas(ca, key, klen, val, vlen, flags, exp, cas, now, ver);
    default:
        return cache_set(ca, key, klen, val, vlen, flags, exp, now, ver);
    }
}

static void
mc_arith(struct memcache_face *f, struct conn *c, const struct mc_cmd *m,
         int64_t now)
{
    uint64_t r;
    char line[24];
    size_t n;
    enum cache_status st =
        m->kind == MC_INCR
            ? cache_incr(f->cache, m->key, m->klen, m->num, now, &r)
            : cache_decr(f->cache, m->key, m->klen, m->num, now, &r);

    cache_service_after_write(f->cs);
    if (m->noreply) {
        return;
    }
    switch (st) {
    case CACHE_OK:
        n = mc_u64(line, r);
        line[n++] = '\r';
        line[n++] = '\n';
        mc_out(c, line, n);
        return;
    case CACHE_NOT_FOUND:
        mc_str(c, "NOT_FOUND\r\n");
        return;
    case CACHE_NOT_NUMBER:
        mc_str(c, "CLIENT_ERROR cannot increment or decrement non-numeric "
                  "value\r\n");
        return;
    default:
        mc_str(c, "SERVER_ERROR out of memory\r\n");
        return;
    }
}

static void
mc_stats(struct memcache_face *f, struct conn *c)
{
    struct cache_stats s;
    char buf[2048];
    int n;
    int64_t now = (int64_t)time(NULL);

    cache_stats_get(f->cache, &s);
    n = snprintf(
        buf, sizeof(buf),
        "STAT pid %d\r\nSTAT uptime %" PRId64 "\r\nSTAT time %" PRId64
        "\r\nSTAT version %s\r\nSTAT curr_connections %" PRIu64
        "\r\nSTAT total_connections %" PRIu64 "\r\nSTAT cmd_get %" PRIu64
        "\r\nSTAT cmd_set %" PRIu64 "\r\nSTAT cmd_flush %" PRIu64
        "\r\nSTAT cmd_touch %" PRIu64 "\r\nSTAT get_hits %" PRIu64
        "\r\nSTAT get_misses %" PRIu64 "\r\nSTAT delete_hits %" PRIu64
        "\r\nSTAT delete_misses %" PRIu64 "\r\nSTAT incr_hits %" PRIu64
        "\r\nSTAT incr_misses %" PRIu64 "\r\nSTAT decr_hits %" PRIu64
        "\r\nSTAT decr_misses %" PRIu64 "\r\nSTAT cas_hits %" PRIu64
        "\r\nSTAT cas_misses %" PRIu64 "\r\nSTAT cas_badval %" PRIu64
        "\r\nSTAT touch_hits %" PRIu64 "\r\nSTAT touch_misses %" PRIu64
        "\r\nSTAT limit_maxbytes %zu\r\nSTAT threads 1\r\nSTAT bytes %" PRIu64
        "\r\nSTAT curr_items %" PRIu64 "\r\nSTAT evictions %" PRIu64
        "\r\nSTAT expired_unfetched %" PRIu64 "\r\nEND\r\n",
        (int)getpid(), now - f->started_unix, now, MC_VERSION_TEXT,
        f->conns_open, f->conns_total, s.cmd_get, s.cmd_set, s.cmd_flush,
        s.cmd_touch, s.get_hits, s.get_misses, s.delete_hits,
        s.delete_misses, s.incr_hits, s.incr_misses, s.decr_hits,
        s.decr_misses, s.cas_hits, s.cas_misses, s.cas_badval, s.touch_hits,
        s.touch_misses, cache_max_bytes(f->cache), s.item_bytes, s.items,
        s.evictions, s.expired_lazy + s.expired_reclaimed);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        mc_out(c, buf, (size_t)n);
    }
}

/* ---- meta commands ---- */

static const struct mc_flag *
mc_flag(const struct mc_cmd *m, char ch)
{
    for (unsigned i = 0; i < m->n_flags; i++) {
        if (m->flag[i].c == ch) {
            return &m->flag[i];
        }
    }
    return NULL;
}

static bool
mc_flags_ok(const struct mc_cmd *m, const char *allowed)
{
    for (unsigned i = 0; i < m->n_flags; i++) {
        if (strchr(allowed, m->flag[i].c) == NULL || m->flag[i].c == '\0') {
            return false;
        }
    }
    return true;
}

/* A flag's token as a number; false when it has none or a bad one. */
static bool
mc_flag_u64(const struct mc_flag *fl, uint64_t *v)
{
    return memcache_u64(fl->tok, fl->len, v);
}

static bool
mc_flag_i64(const struct mc_flag *fl, int64_t *v)
{
    return memcache_i64(fl->tok, fl->len, v);
}

/*
 * Writes the return flags of m in the order given: for each flag of
 * "which" that m carries, its letter and value. v NULL: a miss (only O
 * and k). ttl_expires is the item's expiry after the command.
 */
static size_t
mc_ret_flags(char *d, const struct mc_cmd *m, const char *which,
             const struct cache_view *v, uint64_t cas, int64_t now)
{
    char *s = d;
    /* 'K' in which: k returns the decoded key (memcached's mg hit);
     * else a base64 key comes back as sent, with b after the flags. */
    bool decoded = strchr(which, 'K') != NULL, tail_b = false;

    for (unsigned i = 0; i < m->n_flags; i++) {
        const struct mc_flag *fl = &m->flag[i];
        if (strchr(which, fl->c) == NULL && !(fl->c == 'k' && decoded)) {
            continue;
        }
        if (v == NULL && fl->c != 'O' && fl->c != 'k') {
            continue;
        }
        *d++ = ' ';
        *d++ = fl->c;
        switch (fl->c) {
        case 'O':
            memcpy(d, fl->tok, fl->len);
            d += fl->len;
            break;
        case 'k':
            if (m->b64 && !decoded) {
                memcpy(d, m->rkey, m->rklen);
                d += m->rklen;
                tail_b = true;
            } else {
                memcpy(d, m->key, m->klen);
                d += m->klen;
            }
            break;
        case 'c':
            d += mc_u64(d, cas);
            break;
        case 'f':
            d += mc_u64(d, v->flags);
            break;
        case 's':
            d += mc_u64(d, v->len);
            break;
        case 't': {
            int64_t t = mc_ttl(v->expires, now);
            if (t < 0) {
                *d++ = '-';
                *d++ = '1';
            } else {
                d += mc_u64(d, (uint64_t)t);
            }
            break;
        }
        default:
            break;
        }
    }
    if (tail_b) {
        *d++ = ' ';
        *d++ = 'b';
    }
    return (size_t)(d - s);
}

/* Room mc_ret_flags needs at most. */
static size_t
mc_ret_room(const struct mc_cmd *m)
{
    size_t n = 0;

    for (unsigned i = 0; i < m->n_flags; i++) {
        n += 2 + 24 + m->flag[i].len +
             (m->flag[i].c == 'k' ? m->klen + m->rklen : 0);
    }
    return n + 2;
}

static void
mc_meta_line(struct conn *c, const struct mc_cmd *m, const char *code,
             const char *which, const struct cache_view *v, uint64_t cas,
             int64_t now)
{
    size_t room = 4 + mc_ret_room(m) + 2;
    char *d = (char *)conn_out_prepare(c, room), *s = d;

    if (d == NULL) {
        return;
    }
    memcpy(d, code, 2);
    d += 2;
    d += mc_ret_flags(d, m, which, v, cas, now);
    *d++ = '\r';
    *d++ = '\n';
    conn_out_commit(c, (size_t)(d - s));
}

static const char E_FLAG[] = "CLIENT_ERROR invalid flag\r\n";
static const char E_BADTOK[] = "CLIENT_ERROR bad token in command line "
                               "format\r\n";

static void
mc_mg(struct memcache_face *f, struct conn *c, const struct mc_cmd *m,
      int64_t now)
{
    const struct mc_flag *T = mc_flag(m, 'T');
    struct cache_view v;
    enum cache_status st;
    bool q = mc_flag(m, 'q') != NULL;

    if (!mc_flags_ok(m, "bcfkstvqOTu")) {
        f->errors++;
        mc_str(c, E_FLAG);
        return;
    }
    if (T != NULL) {
        int64_t t;
        if (!mc_flag_i64(T, &t)) {
            f->errors++;
            mc_str(c, E_BADTOK);
            return;
        }
        st = cache_gat(f->cache, m->key, m->klen, mc_expires(f, t, now), now,
                       &v);
    } else {
        st = cache_get(f->cache, m->key, m->klen, now, &v);
    }
    if (st != CACHE_OK) {
        if (!q) {
            mc_meta_line(c, m, "EN", "Ok", NULL, 0, now);
        }
        return;
    }
    if (mc_flag(m, 'v') != NULL) {
        size_t room = 4 + 21 + mc_ret_room(m) + 2 + v.len + 2;
        char *d = (char *)conn_out_prepare(c, room), *s = d;
        if (d == NULL) {
            return;
        }
        memcpy(d, "VA ", 3);
        d += 3;
        d += mc_u64(d, v.len);
        d += mc_ret_flags(d, m, "cfKstO", &v, v.version, now);
        *d++ = '\r';
        *d++ = '\n';
        memcpy(d, v.val, v.len);
        d += v.len;
        *d++ = '\r';
        *d++ = '\n';
        conn_out_commit(c, (size_t)(d - s));
        return;
    }
    mc_meta_line(c, m, "HD", "cfKstO", &v, v.version, now);
}

static void
mc_ms(struct memcache_face *f, struct conn *c, const struct mc_cmd *m,
      int64_t now)
{
    const struct mc_flag *M = mc_flag(m, 'M'), *T = mc_flag(m, 'T'),
                         *F = mc_flag(m, 'F'), *C = mc_flag(m, 'C');
    enum mc_kind kind = MC_SET;
    uint64_t flags = 0, cas = 0, ver = 0;
    int64_t ttl = 0;
    enum cache_status st;
    const char *code;
    struct cache_view v = {0};

    if (!mc_flags_ok(m, "bcCFkOqTMI")) {
        f->errors++;
        mc_str(c, E_FLAG);
        return;
    }
    if (M != NULL) {
        switch (M->len == 1 ? M->tok[0] : 0) {
        case 'E': case 'e': kind = MC_ADD; break;
        case 'A': case 'a': kind = MC_APPEND; break;
        case 'P': case 'p': kind = MC_PREPEND; break;
        case 'R': case 'r': kind = MC_REPLACE; break;
        case 'S': case 's': kind = MC_SET; break;
        default:
            f->errors++;
            mc_str(c, "CLIENT_ERROR invalid mode for ms M token\r\n");
            return;
        }
    }
    if ((T != NULL && !mc_flag_i64(T, &ttl)) ||
        (F != NULL && !mc_flag_u64(F, &flags)) ||
        (C != NULL && !mc_flag_u64(C, &cas))) {
        f->errors++;
        mc_str(c, E_BADTOK);
        return;
    }
    if (C != NULL && kind == MC_SET) {
        kind = MC_CAS;
    }
    st = mc_store(f, kind, m->key, m->klen, m->data, m->dlen,
                  (uint32_t)flags, mc_expires(f, ttl, now), cas, now, &ver);
    cache_service_after_write(f->cs);
    switch (st) {
    case CACHE_STORED:
    case CACHE_OK:
        if (mc_flag(m, 'q') != NULL) {
            return;
        }
        code = "HD";
        break;
    case CACHE_NOT_STORED:
        code = "NS";
        break;
    case CACHE_EXISTS:
        code = "EX";
        break;
    case CACHE_NOT_FOUND:
        code = "NF";
        break;
    case CACHE_TOO_LARGE:
        f->errors++;
        mc_str(c, "SERVER_ERROR object too large for cache\r\n");
        return;
    default:
        f->errors++;
        mc_str(c, "SERVER_ERROR out of memory storing object\r\n");
        return;
    }
    v.flags = (uint32_t)flags;
    mc_meta_line(c, m, code, code[0] == 'H' ? "ckO" : "kO", &v, ver, now);
}

static void
mc_md(struct memcache_face *f, struct conn *c, const struct mc_cmd *m,
      int64_t now)
{
    const struct mc_flag *C = mc_flag(m, 'C');
    struct cache_view v = {0};
    const char *code = "HD";
    uint64_t cas;

    if (!mc_flags_ok(m, "bCkOq")) {
        f->errors++;
        mc_str(c, E_FLAG);
        return;
    }
    if (C != NULL && !mc_flag_u64(C, &cas)) {
        f->errors++;
        mc_str(c, E_BADTOK);
        return;
    }
    if (C != NULL && cache_get(f->cache, m->key, m->klen, now, &v) ==
                         CACHE_OK &&
        v.version != cas) {
        code = "EX";
    } else if (cache_delete(f->cache, m->key, m->klen, now) != CACHE_OK) {
        code = "NF";
    }
    cache_service_after_write(f->cs);
    if (code[0] == 'H' && mc_flag(m, 'q') != NULL) {
        return;
    }
    mc_meta_line(c, m, code, "kO", &v, 0, now);
}

static void
mc_ma(struct memcache_face *f, struct conn *c, const struct mc_cmd *m,
      int64_t now)
{
    const struct mc_flag *M = mc_flag(m, 'M'), *N = mc_flag(m, 'N'),
                         *J = mc_flag(m, 'J'), *D = mc_flag(m, 'D'),
                         *T = mc_flag(m, 'T'), *C = mc_flag(m, 'C');
    uint64_t delta = 1, init = 0, cas = 0, r = 0, ver = 0;
    int64_t nttl = 0, ttl = 0;
    bool decr = false;
    struct cache_view v;
    enum cache_status st;
    const char *code = "HD";

    if (!mc_flags_ok(m, "bNJDTMqtcvkOC")) {
        f->errors++;
        mc_str(c, E_FLAG);
        return;
    }
    if (M != NULL) {
        switch (M->len == 1 ? M->tok[0] : 0) {
        case 'I': case 'i': case '+': decr = false; break;
        case 'D': case 'd': case '-': decr = true; break;
        default:
            f->errors++;
            mc_str(c, "CLIENT_ERROR invalid mode for ma M token\r\n");
            return;
        }
    }
    if ((D != NULL && !mc_flag_u64(D, &delta)) ||
        (J != NULL && !mc_flag_u64(J, &init)) ||
        (N != NULL && !mc_flag_i64(N, &nttl)) ||
        (T != NULL && !mc_flag_i64(T, &ttl)) ||
        (C != NULL && !mc_flag_u64(C, &cas))) {
        f->errors++;
        mc_str(c, E_BADTOK);
        return;
    }
    if (C != NULL && cache_get(f->cache, m->key, m->klen, now, &v) ==
                         CACHE_OK &&
        v.version != cas) {
        mc_meta_line(c, m, "EX", "kO", NULL, 0, now);
        return;
    }
    st = decr ? cache_decr(f->cache, m->key, m->klen, delta, now, &r)
              : cache_incr(f->cache, m->key, m->klen, delta, now, &r);
    if (st == CACHE_NOT_FOUND && N != NULL) {
        char num[24];
        size_t n = mc_u64(num, init);
        st = cache_add(f->cache, m->key, m->klen, num, n, 0,
                       mc_expires(f, nttl, now), now, &ver);
        r = init;
        st = st == CACHE_STORED ? CACHE_OK : CACHE_NOT_STORED;
    } else if (st == CACHE_OK && T != NULL) {
        (void)cache_touch(f->cache, m->key, m->klen, mc_expires(f, ttl, now),
                          now);
    }
    cache_service_after_write(f->cs);
    switch (st) {
    case CACHE_OK:
        break;
    case CACHE_NOT_FOUND:
        code = "NF";
        break;
    case CACHE_NOT_STORED:
        code = "NS";
        break;
    case CACHE_NOT_NUMBER:
        f->errors++;
        mc_str(c, "CLIENT_ERROR cannot increment or decrement non-numeric "
                  "value\r\n");
        return;
    default:
        f->errors++;
        mc_str(c, "SERVER_ERROR out of memory\r\n");
        return;
    }
    if (code[0] != 'H') {
        mc_meta_line(c, m, code, "kO", NULL, 0, now);
        return;
    }
    if (cache_get(f->cache, m->key, m->klen, now, &v) != CACHE_OK) {
        memset(&v, 0, sizeof(v));
    }
    if (mc_flag(m, 'v') != NULL) {
        char num[24];
        size_t nl = mc_u64(num, r);
        size_t room = 4 + 21 + mc_ret_room(m) + 2 + nl + 2;
        char *d = (char *)conn_out_prepare(c, room), *s = d;
        if (d == NULL) {
            return;
        }
        memcpy(d, "VA ", 3);
        d += 3;
        d += mc_u64(d, nl);
        d += mc_ret_flags(d, m, "tckO", &v, v.version, now);
        *d++ = '\r';
        *d++ = '\n';
        memcpy(d, num, nl);
        d += nl;
        *d++ = '\r';
        *d++ = '\n';
        conn_out_commit(c, (size_t)(d - s));
        return;
    }
    if (mc_flag(m, 'q') != NULL) {
        return;
    }
    mc_meta_line(c, m, "HD", "tckO", &v, v.version, now);
}

/* ---- the conn role ---- */

static void
mc_run(struct memcache_face *f, struct conn *c, const struct mc_cmd *m)
{
    int64_t now = cache_service_now_ms(f->cs);
    enum cache_status st;
    uint64_t ver;

    f->cmds[m->kind]++;
    /* Past the memory budget's refusal mark new data is refused, as the
     * binary side answers OVERLOADED; reads still work. */
    if (m->dlen > 0 && mem_is_tight(f->loop, m->dlen + m->klen)) {
        f->errors++;
        if (!m->noreply) {
            mc_str(c, "SERVER_ERROR out of memory storing object\r\n");
        }
        return;
    }
    switch (m->kind) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        mc_get(f, c, m, now);
        return;
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS:
        st = mc_store(f, m->kind, m->key, m->klen, m->data, m->dlen, m->flags,
                      mc_expires(f, m->exptime, now), m->cas, now, &ver);
        cache_service_after_write(f->cs);
        mc_store_answer(c, st, m->noreply);
        return;
    case MC_DELETE:
        st = cache_delete(f->cache, m->key, m->klen, now);
        cache_service_after_write(f->cs);
        if (!m->noreply) {
            mc_str(c, st == CACHE_OK ? "DELETED\r\n" : "NOT_FOUND\r\n");
        }
        return;
    case MC_INCR:
    case MC_DECR:
        mc_arith(f, c, m, now);
        return;
    case MC_TOUCH:
        st = cache_touch(f->cache, m->key, m->klen,
                         mc_expires(f, m->exptime, now), now);
        if (!m->noreply) {
            mc_str(c, st == CACHE_OK ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
        }
        return;
    case MC_FLUSH_ALL:
        cache_flush(f->cache,
                    m->has_num && m->exptime > 0
                        ? mc_expires(f, m->exptime, now)
                        : now,
                    now);
        cache_service_after_write(f->cs);
        if (!m->noreply) {
            mc_str(c, "OK\r\n");
        }
        return;
    case MC_VERSION:
        mc_str(c, "VERSION " MC_VERSION_TEXT "\r\n");
        return;
    case MC_STATS:
        if (m->has_num) {
            mc_str(c, "RESET\r\n");
            return;
        }
        mc_stats(f, c);
        return;
    case MC_VERBOSITY:
        if (!m->noreply) {
            mc_str(c, "OK\r\n");
        }
        return;
    case MC_QUIT:
        conn_close(c, "quit");
        return;
    case MC_MG:
        mc_mg(f, c, m, now);
        return;
    case MC_MS:
        mc_ms(f, c, m, now);
        return;
    case MC_MD:
        mc_md(f, c, m, now);
        return;
    case MC_MA:
        mc_ma(f, c, m, now);
        return;
    case MC_MN:
        mc_str(c, "MN\r\n");
        return;
    default:
        return;
    }
}

static size_t
mc_bytes(struct conn *c, const uint8_t *p, size_t n, size_t *need)
{
    struct memcache_face *f = mc_face;
    struct mc_conn *mc = c->data;
    struct mc_cmd m;
    enum mc_result r;

    if (mc == NULL) {
        mc = calloc(1, sizeof(*mc));
        if (mc == NULL) {
            conn_close(c, "out of memory");
            return 0;
        }
        c->data = mc;
        f->conns_total++;
        f->conns_open++;
    }
    if (mc->swallow > 0) {
        size_t k = mc->swallow < n ? (size_t)mc->swallow : n;
        mc->swallow -= k;
        return k;
    }
    r = memcache_parse(p, n, f->item_max, &m);
    switch (r) {
    case MC_NEED:
        *need = m.need;
        return 0;
    case MC_CLOSE:
        f->closed_garbage++;
        log_info("memcache '%s': line beyond the limits, closing", c->peer);
        conn_close(c, "line too long");
        return 0;
    case MC_ERR:
        f->errors++;
        if (m.err[0] != '\0') {
            mc_str(c, m.err);
        }
        mc->swallow = m.swallow;
        return m.used;
    case MC_CMD:
        mc_run(f, c, &m);
        return m.used;
    }
    return 0;
}

ferry_err
memcache_open(struct memcache_face **out, struct loop *l,
              struct cache_service *cs, size_t item_max, const char *addr)
{
    struct memcache_face *f = calloc(1, sizeof(*f));
    ferry_err err;

    if (f == NULL) {
        return FERRY_ENOMEM;
    }
    f->loop = l;
    f->cs = cs;
    f->cache = cache_service_cache(cs);
    f->item_max = item_max;
    f->started_unix = (int64_t)time(NULL);
    mc_face = f;
    err = loop_listen_as(l, addr, &mc_ops);
    if (err != FERRY_OK) {
        mc_face = NULL;
        free(f);
        return err;
    }
    *out = f;
    return FERRY_OK;
}

void
memcache_close(struct memcache_face *f)
{
    if (f == NULL) {
        return;
    }
    if (mc_face == f) {
        mc_face = NULL;
    }
    free(f);
}

const struct memcache_face *
memcache_current(void)
{
    return mc_face;
}

json_t *
memcache_stats_json(const struct memcache_face *f)
{
    json_t *o = json_object(), *cmds = json_object();

    if (o == NULL || cmds == NULL) {
        json_decref(o);
        json_decref(cmds);
        return NULL;
    }
    for (int k = 1; k < MC_KIND_COUNT; k++) {
        json_object_set_new(cmds, memcache_kind_name(k),
                            json_integer((json_int_t)f->cmds[k]));
    }
    json_object_set_new(o, "connections_open",
                        json_integer((json_int_t)f->conns_open));
    json_object_set_new(o, "connections_total",
                        json_integer((json_int_t)f->conns_total));
    json_object_set_new(o, "errors", json_integer((json_int_t)f->errors));
    json_object_set_new(o, "closed_garbage",
                        json_integer((json_int_t)f->closed_garbage));
    json_object_set_new(o, "commands", cmds);
    return o;
}

void
memcache_metrics(const struct memcache_face *f, FILE *out)
{
    fprintf(out,
            "# HELP ferry_memcache_connections Connections of the memcached "
            "face open now.\n# TYPE ferry_memcache_connections gauge\n"
            "ferry_memcache_connections %" PRIu64 "\n"
            "# HELP ferry_memcache_connections_total Connections accepted "
            "by the memcached face.\n"
            "# TYPE ferry_memcache_connections_total counter\n"
            "ferry_memcache_connections_total %" PRIu64 "\n"
            "# HELP ferry_memcache_errors_total Error answers of the "
            "memcached face.\n# TYPE ferry_memcache_errors_total counter\n"
            "ferry_memcache_errors_total %" PRIu64 "\n"
            "# HELP ferry_memcache_commands_total Commands of the memcached "
            "face, by command.\n"
            "# TYPE ferry_memcache_commands_total counter\n",
            f->conns_open, f->conns_total, f->errors);
    for (int k = 1; k < MC_KIND_COUNT; k++) {
        fprintf(out, "ferry_memcache_commands_total{command=\"%s\"} %" PRIu64
                     "\n",
                memcache_kind_name(k), f->cmds[k]);
    }
}
