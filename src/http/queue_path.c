/* SPDX-License-Identifier: MIT */
/*
 * queue_path.c - the routes under /v1/queues (see queue_path.h): the
 * path cut in segments (the queue, "jobs" and a job id, an action), the
 * method checked against the route's, the query read against the
 * parameters that route takes (each one at most once, every value
 * bounded by its field on the wire), then the headers and the body.
 *
 * The order of refusals: a path that is no route is 404, a route of
 * another method 405, anything else wrong 400. Nothing is allocated:
 * the decoded queue name and dedup id go to the caller's scratch, the
 * rest are slices of the input.
 */
#include "http/queue_path.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "queue/queue.h"

/* The query parameters, one bit each: a route says which it takes. */
enum {
    QP_PRIORITY = 1u << 0,
    QP_DELAY = 1u << 1,
    QP_VISIBILITY = 1u << 2,
    QP_MAX_DELIVERIES = 1u << 3,
    QP_DEDUP = 1u << 4,
    QP_WAIT = 1u << 5,
    QP_FORMAT = 1u << 6,
    QP_TOKEN = 1u << 7,
    QP_BACKOFF = 1u << 8,
    QP_WHICH = 1u << 9,
    QP_LIMIT = 1u << 10,
};

static const struct {
    const char *name;
    unsigned bit;
} queue_path_params[] = {
    {"priority", QP_PRIORITY},
    {"delay_ms", QP_DELAY},
    {"visibility_ms", QP_VISIBILITY},
    {"max_deliveries", QP_MAX_DELIVERIES},
    {"dedup", QP_DEDUP},
    {"wait_ms", QP_WAIT},
    {"format", QP_FORMAT},
    {"token", QP_TOKEN},
    {"backoff", QP_BACKOFF},
    {"which", QP_WHICH},
    {"limit", QP_LIMIT},
};
#define QP_N_PARAMS (sizeof(queue_path_params) / sizeof(queue_path_params[0]))

/* One route: the last segment of its path, its method and op. */
struct queue_path_route {
    const char *action; /* the segment after {q} or {id}; NULL: none */
    bool job;           /* under /{q}/jobs/{id}/ */
    const char *method; /* "GET" (HEAD too), "POST", "PUT", "DELETE" */
    uint8_t op;         /* enum queue_op */
    bool settings;      /* GET .../settings */
    unsigned params;    /* the query parameters it takes */
    const char *allow;  /* every method of its path, for a 405 */
    const char *shape;  /* for messages */
};

static const struct queue_path_route queue_path_routes[] = {
    {NULL, false, "GET", QUEUE_OP_STATS, false, 0, "GET, HEAD, DELETE",
     "GET /v1/queues/{q}"},
    {NULL, false, "DELETE", QUEUE_OP_DELETE, false, 0, "GET, HEAD, DELETE",
     "DELETE /v1/queues/{q}"},
    {"jobs", false, "POST", QUEUE_OP_PUSH, false,
     QP_PRIORITY | QP_DELAY | QP_VISIBILITY | QP_MAX_DELIVERIES | QP_DEDUP,
     "POST", "POST /v1/queues/{q}/jobs"},
    {"reserve", false, "POST", QUEUE_OP_RESERVE, false,
     QP_WAIT | QP_VISIBILITY | QP_FORMAT, "POST",
     "POST /v1/queues/{q}/reserve"},
    {"peek", false, "GET", QUEUE_OP_PEEK, false, QP_WHICH | QP_LIMIT,
     "GET, HEAD", "GET /v1/queues/{q}/peek"},
    {"pause", false, "POST", QUEUE_OP_PAUSE, false, 0, "POST",
     "POST /v1/queues/{q}/pause"},
    {"resume", false, "POST", QUEUE_OP_RESUME, false, 0, "POST",
     "POST /v1/queues/{q}/resume"},
    {"purge", false, "POST", QUEUE_OP_PURGE, false, 0, "POST",
     "POST /v1/queues/{q}/purge"},
    {"redrive", false, "POST", QUEUE_OP_REDRIVE, false, QP_LIMIT, "POST",
     "POST /v1/queues/{q}/redrive"},
    {"settings", false, "GET", QUEUE_OP_STATS, true, 0, "GET, HEAD, PUT",
     "GET /v1/queues/{q}/settings"},
    {"settings", false, "PUT", QUEUE_OP_CONFIGURE, false, 0, "GET, HEAD, PUT",
     "PUT /v1/queues/{q}/settings"},
    {"ack", true, "POST", QUEUE_OP_ACK, false, QP_TOKEN, "POST",
     "POST /v1/queues/{q}/jobs/{id}/ack"},
    {"release", true, "POST", QUEUE_OP_RELEASE, false,
     QP_TOKEN | QP_DELAY | QP_BACKOFF, "POST",
     "POST /v1/queues/{q}/jobs/{id}/release"},
    {"touch", true, "POST", QUEUE_OP_TOUCH, false, QP_TOKEN | QP_VISIBILITY,
     "POST", "POST /v1/queues/{q}/jobs/{id}/touch"},
    {"bury", true, "POST", QUEUE_OP_BURY, false, QP_TOKEN, "POST",
     "POST /v1/queues/{q}/jobs/{id}/bury"},
};
#define QP_N_ROUTES (sizeof(queue_path_routes) / sizeof(queue_path_routes[0]))

/* GET /v1/queues: every queue's stats. */
static const struct queue_path_route queue_path_list = {
    NULL,  false, "GET",       QUEUE_OP_STATS,
    false, 0,     "GET, HEAD", "GET /v1/queues"};

static int
queue_path_refuse(char *err, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, QUEUE_PATH_ERR_SIZE, fmt, ap);
    va_end(ap);
    return status;
}

static bool
queue_path_is(struct slice s, const char *text)
{
    size_t n = strlen(text);

    return s.len == n && memcmp(s.p, text, n) == 0;
}

static int
queue_path_hex(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes s into dst (room for s.len); in a query value (form)
 * '+' is a space too. A '%' without two hex digits stays as it is.
 * Returns the bytes written. */
static size_t
queue_path_decode(uint8_t *dst, struct slice s, bool form)
{
    size_t n = 0;

    for (size_t i = 0; i < s.len; i++) {
        int hi, lo;
        if (s.p[i] == '%' && i + 2 < s.len &&
            (hi = queue_path_hex(s.p[i + 1])) >= 0 &&
            (lo = queue_path_hex(s.p[i + 2])) >= 0) {
            dst[n++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (form && s.p[i] == '+') {
            dst[n++] = ' ';
        } else {
            dst[n++] = s.p[i];
        }
    }
    return n;
}

/* A decimal u64 of 1 to 20 digits, nothing else; false when none or
 * past UINT64_MAX. */
static bool
queue_path_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 20) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)p[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A decimal in [min, max] (an optional '-' before the digits). */
static bool
queue_path_int(struct slice s, int64_t min, int64_t max, int64_t *out)
{
    bool neg = s.len > 0 && s.p[0] == '-';
    uint64_t v;

    if (!queue_path_u64(s.p + neg, s.len - neg, &v) ||
        v > (uint64_t)INT64_MAX) {
        return false;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return *out >= min && *out <= max;
}

/* A flag: 1, true, 0 or false. */
static bool
queue_path_flag(struct slice s, bool *out)
{
    if (queue_path_is(s, "1") || queue_path_is(s, "true")) {
        *out = true;
        return true;
    }
    if (queue_path_is(s, "0") || queue_path_is(s, "false")) {
        *out = false;
        return true;
    }
    return false;
}

/* The parameters of route in a list for a message: "a, b, c". */
static void
queue_path_param_list(unsigned params, char *buf, size_t size)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < QP_N_PARAMS && n < size; i++) {
        if ((params & queue_path_params[i].bit) != 0) {
            int k = snprintf(buf + n, size - n, "%s%s", n > 0 ? ", " : "",
                             queue_path_params[i].name);
            n += k > 0 ? (size_t)k : 0;
        }
    }
}

/* What the query gave; each value raw (percent-encoded) until used. */
struct queue_path_query {
    unsigned seen;                  /* QP_* bits given */
    struct slice vals[QP_N_PARAMS]; /* by index in queue_path_params */
};

/* Cuts the query into its parameters, each one known to route and given
 * once; 0 or 400. */
static int
queue_path_query_split(struct slice query, const struct queue_path_route *rt,
                       struct queue_path_query *q, char *err)
{
    const uint8_t *p = query.p, *end;

    if (query.len == 0) {
        return 0;
    }
    end = query.p + query.len;
    while (p < end) {
        const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
        const uint8_t *eq;
        struct slice name;
        size_t k;

        amp = amp != NULL ? amp : end;
        if (amp == p) {
            p++; /* an empty pair ("a=1&&b=2", a final '&') */
            continue;
        }
        eq = memchr(p, '=', (size_t)(amp - p));
        name.p = p;
        name.len = (size_t)((eq != NULL ? eq : amp) - p);
        for (k = 0; k < QP_N_PARAMS; k++) {
            if (queue_path_is(name, queue_path_params[k].name) &&
                (rt->params & queue_path_params[k].bit) != 0) {
                break;
            }
        }
        if (k == QP_N_PARAMS) {
            char known[160];
            queue_path_param_list(rt->params, known, sizeof(known));
            return queue_path_refuse(
                err, 400, "query: %s takes %s%s; not '%.*s'", rt->shape,
                known[0] != '\0' ? "" : "no parameters", known,
                (int)(name.len > 40 ? 40 : name.len), (const char *)name.p);
        }
        if ((q->seen & queue_path_params[k].bit) != 0) {
            return queue_path_refuse(err, 400, "query: '%s' given twice",
                                     queue_path_params[k].name);
        }
        if (eq == NULL) {
            return queue_path_refuse(err, 400, "query: '%s' needs a value",
                                     queue_path_params[k].name);
        }
        q->seen |= queue_path_params[k].bit;
        q->vals[k].p = eq + 1;
        q->vals[k].len = (size_t)(amp - eq - 1);
        p = amp;
    }
    return 0;
}

/* The value of param, percent-decoded into buf (room for size); false
 * when it was not given or is longer. */
static bool
queue_path_value(const struct queue_path_query *q, unsigned bit, uint8_t *buf,
                 size_t size, struct slice *out)
{
    for (size_t k = 0; k < QP_N_PARAMS; k++) {
        if (queue_path_params[k].bit == bit && (q->seen & bit) != 0) {
            if (q->vals[k].len > size) {
                out->p = q->vals[k].p;
                out->len = q->vals[k].len; /* too long: refused by caller */
                return true;
            }
            out->p = buf;
            out->len = queue_path_decode(buf, q->vals[k], true);
            return true;
        }
    }
    return false;
}

/* A numeric parameter within [min, max] into *v (left alone when not
 * given); 0 or 400 naming it and its bounds. */
static int
queue_path_num(const struct queue_path_query *q, unsigned bit, int64_t min,
               int64_t max, int64_t *v, char *err)
{
    uint8_t buf[32];
    struct slice s;
    const char *name = "?";

    if (!queue_path_value(q, bit, buf, sizeof(buf), &s)) {
        return 0;
    }
    if (s.p == buf && queue_path_int(s, min, max, v)) {
        return 0;
    }
    for (size_t k = 0; k < QP_N_PARAMS; k++) {
        if (queue_path_params[k].bit == bit) {
            name = queue_path_params[k].name;
        }
    }
    return queue_path_refuse(err, 400,
                             "%s must be a whole number from %lld to %lld",
                             name, (long long)min, (long long)max);
}

/* The token of a job route: ?token= or Ferry-Job-Token (the same if
 * both); 0 or 400. */
static int
queue_path_token(const struct queue_path_in *in,
                 const struct queue_path_query *q,
                 const struct queue_path_route *rt, uint64_t *token, char *err)
{
    uint8_t buf[32];
    struct slice s;
    uint64_t qv = 0, hv = 0;
    bool in_query = queue_path_value(q, QP_TOKEN, buf, sizeof(buf), &s);

    if (in_query && (s.p != buf || !queue_path_u64(s.p, s.len, &qv))) {
        return queue_path_refuse(err, 400,
                                 "token must be the reservation's token, a "
                                 "decimal number below 2^64");
    }
    if (in->token.p != NULL &&
        !queue_path_u64(in->token.p, in->token.len, &hv)) {
        return queue_path_refuse(err, 400,
                                 "Ferry-Job-Token must be the reservation's "
                                 "token, a decimal number below 2^64");
    }
    if (!in_query && in->token.p == NULL) {
        return queue_path_refuse(err, 400,
                                 "%s needs the reservation's token: ?token=N "
                                 "or a Ferry-Job-Token header",
                                 queue_codec_op_name(rt->op));
    }
    if (in_query && in->token.p != NULL && qv != hv) {
        return queue_path_refuse(err, 400, "?token and Ferry-Job-Token differ");
    }
    *token = in_query ? qv : hv;
    return 0;
}

/* The dedup id of a push: ?dedup= or Ferry-Dedup-Id, 1 to
 * QUEUE_DEDUP_MAX bytes (decoded into scratch, room bytes); 0 or 400. */
static int
queue_path_dedup(const struct queue_path_in *in,
                 const struct queue_path_query *q, uint8_t *scratch,
                 size_t room, struct slice *dedup, char *err)
{
    struct slice s = {NULL, 0};
    bool in_query = queue_path_value(q, QP_DEDUP, scratch, room, &s);

    if (in_query && in->dedup.p != NULL) {
        return queue_path_refuse(err, 400,
                                 "give the dedup id once: ?dedup= or "
                                 "Ferry-Dedup-Id");
    }
    if (!in_query && in->dedup.p != NULL) {
        s = in->dedup;
    }
    if (!in_query && in->dedup.p == NULL) {
        return 0;
    }
    if (s.len == 0 || s.len > QUEUE_DEDUP_MAX) {
        return queue_path_refuse(err, 400,
                                 "a dedup id is 1 to %d bytes, got %zu",
                                 QUEUE_DEDUP_MAX, s.len);
    }
    *dedup = s;
    return 0;
}

/* The query's values into r, by route; 0 or 400. */
static int
queue_path_fields(const struct queue_path_in *in,
                  const struct queue_path_query *q,
                  const struct queue_path_route *rt, uint8_t *scratch,
                  size_t room, struct queue_path *out, char *err)
{
    struct queue_req *r = &out->r;
    int64_t v;
    int st;
    uint8_t buf[16];
    struct slice s;

#define QP_NUM(bit, min, max, field)                                           \
    do {                                                                       \
        v = (int64_t)(field);                                                  \
        st = queue_path_num(q, bit, min, max, &v, err);                        \
        if (st != 0) {                                                         \
            return st;                                                         \
        }                                                                      \
        (field) = v;                                                           \
    } while (0)
    switch (rt->op) {
    case QUEUE_OP_PUSH:
        QP_NUM(QP_PRIORITY, INT16_MIN, INT16_MAX, r->priority);
        QP_NUM(QP_DELAY, 0, UINT32_MAX, r->delay_ms);
        QP_NUM(QP_VISIBILITY, 0, UINT32_MAX, r->visibility_ms);
        QP_NUM(QP_MAX_DELIVERIES, 0, UINT16_MAX, r->max_deliveries);
        st = queue_path_dedup(in, q, scratch, room, &r->dedup, err);
        if (st != 0) {
            return st;
        }
        r->payload = in->body;
        break;
    case QUEUE_OP_RESERVE:
        QP_NUM(QP_WAIT, 0, QUEUE_MAX_WAIT_MS, r->wait_ms);
        QP_NUM(QP_VISIBILITY, 0, UINT32_MAX, r->visibility_ms);
        if (queue_path_value(q, QP_FORMAT, buf, sizeof(buf), &s)) {
            if (s.p == buf && queue_path_is(s, "json")) {
                out->json = true;
            } else if (!(s.p == buf && queue_path_is(s, "raw"))) {
                return queue_path_refuse(err, 400,
                                         "format must be json or raw");
            }
        }
        break;
    case QUEUE_OP_RELEASE: {
        bool backoff = false;
        if (queue_path_value(q, QP_BACKOFF, buf, sizeof(buf), &s) &&
            (s.p != buf || !queue_path_flag(s, &backoff))) {
            return queue_path_refuse(err, 400,
                                     "backoff must be 1, true, 0 or false");
        }
        if (backoff && (q->seen & QP_DELAY) != 0) {
            return queue_path_refuse(err, 400,
                                     "give delay_ms or backoff=1, not both");
        }
        /* UINT32_MAX on the wire means "by backoff_ms". */
        QP_NUM(QP_DELAY, 0, UINT32_MAX - 1, r->delay_ms);
        if (backoff) {
            r->delay_ms = QUEUE_RELEASE_BACKOFF;
        }
        break;
    }
    case QUEUE_OP_TOUCH:
        QP_NUM(QP_VISIBILITY, 0, UINT32_MAX, r->visibility_ms);
        break;
    case QUEUE_OP_BURY:
        if (in->body.len > QUEUE_REASON_MAX) {
            return queue_path_refuse(err, 400,
                                     "a bury's reason (the body) is at most "
                                     "%d bytes, got %zu",
                                     QUEUE_REASON_MAX, in->body.len);
        }
        r->reason = in->body;
        break;
    case QUEUE_OP_PEEK:
        if (queue_path_value(q, QP_WHICH, buf, sizeof(buf), &s)) {
            static const char *const kinds[] = {"ready", "delayed", "dead",
                                                "reserved"};
            size_t k = 0;
            while (k < 4 && !(s.p == buf && queue_path_is(s, kinds[k]))) {
                k++;
            }
            if (k == 4) {
                return queue_path_refuse(err, 400,
                                         "which must be ready, delayed, dead "
                                         "or reserved");
            }
            r->which = (uint8_t)k;
        }
        QP_NUM(QP_LIMIT, 0, QUEUE_PEEK_MAX, r->limit);
        break;
    case QUEUE_OP_REDRIVE:
        QP_NUM(QP_LIMIT, 0, UINT32_MAX, r->limit);
        break;
    case QUEUE_OP_CONFIGURE:
        if (in->body.len == 0 || in->body.len > QUEUE_SETTINGS_MAX) {
            return queue_path_refuse(err, 400,
                                     "the body is a JSON object of settings, "
                                     "1 to %d bytes; got %zu",
                                     QUEUE_SETTINGS_MAX, in->body.len);
        }
        r->settings = in->body;
        break;
    }
#undef QP_NUM
    return 0;
}

int
queue_path_parse(const struct queue_path_in *in, uint8_t *scratch,
                 struct queue_path *out, const char **allow, char *err)
{
    static const size_t plen = sizeof(QUEUE_PATH_PREFIX) - 1;
    const uint8_t *path = in->path.p, *qm;
    struct slice segs[4], query = {NULL, 0}, name = {NULL, 0};
    const struct queue_path_route *rt = NULL;
    struct queue_path_query q;
    struct queue_path o;
    size_t len = in->path.len, n_segs = 0, pos;
    const char *known = NULL; /* the methods of the path, when a route's */
    bool head = queue_path_is(in->method, "HEAD");
    struct slice method = head ? slice_str("GET") : in->method;
    int st;

    memset(&o, 0, sizeof(o));
    memset(&q, 0, sizeof(q));
    qm = len > 0 ? memchr(path, '?', len) : NULL;
    if (qm != NULL) {
        query.p = qm + 1;
        query.len = (size_t)(path + len - qm - 1);
        len = (size_t)(qm - path);
    }
    if (len < plen || memcmp(path, QUEUE_PATH_PREFIX, plen) != 0 ||
        (len > plen && path[plen] != '/')) {
        return queue_path_refuse(err, 404, "no such route");
    }
    /* The segments after the prefix; "/v1/queues/" lists too. */
    pos = plen + 1;
    while (pos <= len && len > plen + 1) {
        const uint8_t *slash = memchr(path + pos, '/', len - pos);
        size_t end = slash != NULL ? (size_t)(slash - path) : len;
        if (n_segs == 4 || end == pos) {
            return queue_path_refuse(err, 404,
                                     "no such route under /v1/queues "
                                     "(docs/http.md)");
        }
        segs[n_segs].p = path + pos;
        segs[n_segs].len = end - pos;
        n_segs++;
        pos = end + 1;
    }
    if (n_segs == 0) {
        if (!queue_path_is(method, "GET")) {
            *allow = queue_path_list.allow;
            return queue_path_refuse(err, 405, "use GET /v1/queues");
        }
        rt = &queue_path_list;
    } else {
        for (size_t i = 0; i < QP_N_ROUTES; i++) {
            const struct queue_path_route *c = &queue_path_routes[i];
            bool fits;
            if (c->job) {
                fits = n_segs == 4 && queue_path_is(segs[1], "jobs") &&
                       queue_path_is(segs[3], c->action);
            } else if (c->action != NULL) {
                fits = n_segs == 2 && queue_path_is(segs[1], c->action);
            } else {
                fits = n_segs == 1;
            }
            if (!fits) {
                continue;
            }
            known = c->allow;
            if (queue_path_is(method, c->method)) {
                rt = c;
                break;
            }
        }
        if (rt == NULL && known != NULL) {
            *allow = known;
            return queue_path_refuse(err, 405, "use %s on this route", known);
        }
        if (rt == NULL) {
            return queue_path_refuse(err, 404,
                                     "no such route under /v1/queues "
                                     "(docs/http.md)");
        }
        name.p = scratch;
        name.len = queue_path_decode(scratch, segs[0], false);
        if (!queue_name_is_valid(name)) {
            return queue_path_refuse(err, 400,
                                     "a queue name is 1 to %d bytes of "
                                     "A-Z a-z 0-9 _ . : -",
                                     QUEUE_NAME_MAX);
        }
        scratch += name.len; /* the dedup id goes after it */
        if (rt->job && !queue_path_u64(segs[2].p, segs[2].len, &o.r.id)) {
            return queue_path_refuse(err, 400,
                                     "a job id is a decimal number below "
                                     "2^64");
        }
    }
    o.r.op = rt->op;
    o.r.queue = name;
    o.settings = rt->settings;
    o.head = head;
    st = queue_path_query_split(query, rt, &q, err);
    if (st != 0) {
        return st;
    }
    if (rt->job) {
        st = queue_path_token(in, &q, rt, &o.r.token, err);
        if (st != 0) {
            return st;
        }
    }
    st = queue_path_fields(in, &q, rt, scratch, in->path.len - name.len, &o,
                           err);
    if (st != 0) {
        return st;
    }
    *out = o;
    return 0;
}
