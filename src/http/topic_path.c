/* SPDX-License-Identifier: MIT */
/*
 * topic_path.c - the routes under /v1/topics (see topic_path.h): the
 * path cut in segments (the subject or pattern, then "stream" or
 * nothing), the method checked against the route's, the name
 * percent-decoded and checked by the trie's own rules, then the query
 * read against the parameters the stream takes (each one at most once,
 * every value bounded).
 *
 * The order of refusals: a path that is no route is 404, a route of
 * another method 405, anything else wrong 400. Nothing is allocated: the
 * decoded name and group go to the caller's scratch.
 */
#include "http/topic_path.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "topic/topic_codec.h"
#include "topic/trie.h"

/* The stream's query parameters, in the order its messages list them. */
enum {
    TP_GROUP,
    TP_MAX_PENDING,
    TP_POLICY,
    TP_ENCODING,
    TP_KEEPALIVE,
    TP_N_PARAMS,
};

static const char *const topic_path_params[TP_N_PARAMS] = {
    "group", "max_pending", "policy", "encoding", "keepalive_ms",
};

static int
topic_path_refuse(char *err, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, TOPIC_PATH_ERR_SIZE, fmt, ap);
    va_end(ap);
    return status;
}

static bool
topic_path_is(struct slice s, const char *text)
{
    size_t n = strlen(text);

    return s.len == n && memcmp(s.p, text, n) == 0;
}

static int
topic_path_hex(uint8_t c)
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
topic_path_decode(uint8_t *dst, struct slice s, bool form)
{
    size_t n = 0;

    for (size_t i = 0; i < s.len; i++) {
        int hi, lo;
        if (s.p[i] == '%' && i + 2 < s.len &&
            (hi = topic_path_hex(s.p[i + 1])) >= 0 &&
            (lo = topic_path_hex(s.p[i + 2])) >= 0) {
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

/* A decimal of 1 to 10 digits in [min, max], nothing else. */
static bool
topic_path_u32(struct slice s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;

    if (s.len == 0 || s.len > 10) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned)s.p[i] - '0';
        if (d > 9) {
            return false;
        }
        v = v * 10 + d;
    }
    if (v < min || v > max) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Cuts the query into the stream's parameters, each known and given
 * once, their values raw; 0 or 400. */
static int
topic_path_query_split(struct slice query, struct slice *vals, unsigned *seen,
                       char *err)
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
        for (k = 0; k < TP_N_PARAMS; k++) {
            if (topic_path_is(name, topic_path_params[k])) {
                break;
            }
        }
        if (k == TP_N_PARAMS) {
            return topic_path_refuse(
                err, 400,
                "query: GET /v1/topics/{pattern}/stream takes group, "
                "max_pending, policy, encoding, keepalive_ms; not '%.*s'",
                (int)(name.len > 40 ? 40 : name.len), (const char *)name.p);
        }
        if ((*seen & (1u << k)) != 0) {
            return topic_path_refuse(err, 400, "query: '%s' given twice",
                                     topic_path_params[k]);
        }
        if (eq == NULL) {
            return topic_path_refuse(err, 400, "query: '%s' needs a value",
                                     topic_path_params[k]);
        }
        *seen |= 1u << k;
        vals[k].p = eq + 1;
        vals[k].len = (size_t)(amp - eq - 1);
        p = amp;
    }
    return 0;
}

/* The value of parameter k decoded into buf (room for size) when it
 * fits; a value that does not is left raw (buf not used), for the caller
 * to refuse. */
static struct slice
topic_path_value(const struct slice *vals, int k, uint8_t *buf, size_t size)
{
    if (vals[k].len > size) {
        return vals[k];
    }
    return (struct slice){buf, topic_path_decode(buf, vals[k], true)};
}

/* The stream's query into *o (defaults for what is not given); 0 or
 * 400. The group is decoded into scratch (room for its raw length). */
static int
topic_path_stream_query(struct slice query, uint8_t *scratch,
                        struct topic_path *o, char *err)
{
    struct slice vals[TP_N_PARAMS], v;
    unsigned seen = 0;
    uint8_t buf[32];
    int st;

    o->max_pending = TOPIC_PENDING_DEFAULT;
    o->policy = TOPIC_POLICY_DROP_OLDEST;
    o->keepalive_ms = TOPIC_PATH_KEEPALIVE_DEFAULT;
    memset(vals, 0, sizeof(vals));
    st = topic_path_query_split(query, vals, &seen, err);
    if (st != 0) {
        return st;
    }
    if (seen & (1u << TP_GROUP)) {
        o->group.p = scratch;
        o->group.len = topic_path_decode(scratch, vals[TP_GROUP], true);
        if (!topic_group_is_valid(o->group)) {
            return topic_path_refuse(err, 400,
                                     "group must be 1 to %d bytes of "
                                     "printable ASCII, no spaces "
                                     "(percent-decoded)",
                                     TOPIC_GROUP_MAX);
        }
    }
    if (seen & (1u << TP_MAX_PENDING)) {
        v = topic_path_value(vals, TP_MAX_PENDING, buf, sizeof(buf));
        if (v.p != buf ||
            !topic_path_u32(v, 1, TOPIC_PENDING_MAX, &o->max_pending)) {
            return topic_path_refuse(err, 400,
                                     "max_pending must be a whole number "
                                     "from 1 to %d (default %d)",
                                     TOPIC_PENDING_MAX, TOPIC_PENDING_DEFAULT);
        }
    }
    if (seen & (1u << TP_POLICY)) {
        v = topic_path_value(vals, TP_POLICY, buf, sizeof(buf));
        if (v.p == buf && topic_path_is(v, "drop_oldest")) {
            o->policy = TOPIC_POLICY_DROP_OLDEST;
        } else if (v.p == buf && topic_path_is(v, "close")) {
            o->policy = TOPIC_POLICY_CLOSE;
        } else {
            return topic_path_refuse(err, 400,
                                     "policy must be drop_oldest or close");
        }
    }
    if (seen & (1u << TP_ENCODING)) {
        v = topic_path_value(vals, TP_ENCODING, buf, sizeof(buf));
        if (v.p == buf && topic_path_is(v, "base64")) {
            o->base64 = true;
        } else if (!(v.p == buf && topic_path_is(v, "text"))) {
            return topic_path_refuse(err, 400,
                                     "encoding must be text or base64");
        }
    }
    if (seen & (1u << TP_KEEPALIVE)) {
        v = topic_path_value(vals, TP_KEEPALIVE, buf, sizeof(buf));
        if (v.p != buf ||
            !topic_path_u32(v, TOPIC_PATH_KEEPALIVE_MIN,
                            TOPIC_PATH_KEEPALIVE_MAX, &o->keepalive_ms)) {
            return topic_path_refuse(err, 400,
                                     "keepalive_ms must be a whole number "
                                     "from %d to %d (default %d)",
                                     TOPIC_PATH_KEEPALIVE_MIN,
                                     TOPIC_PATH_KEEPALIVE_MAX,
                                     TOPIC_PATH_KEEPALIVE_DEFAULT);
        }
    }
    return 0;
}

int
topic_path_parse(struct slice method, struct slice path, uint8_t *scratch,
                 struct topic_path *out, const char **allow, char *err)
{
    static const size_t plen = sizeof(TOPIC_PATH_PREFIX) - 1;
    const uint8_t *p = path.p, *qm, *slash;
    struct slice query = {NULL, 0}, seg;
    struct topic_path o;
    size_t len = path.len;
    bool stream;
    int st;

    memset(&o, 0, sizeof(o));
    qm = len > 0 ? memchr(p, '?', len) : NULL;
    if (qm != NULL) {
        query.p = qm + 1;
        query.len = (size_t)(p + len - qm - 1);
        len = (size_t)(qm - p);
    }
    if (len < plen + 2 || memcmp(p, TOPIC_PATH_PREFIX, plen) != 0 ||
        p[plen] != '/') {
        return topic_path_refuse(err, 404,
                                 "no such route under /v1/topics "
                                 "(docs/http.md)");
    }
    /* One segment (publish), or one and "stream". */
    seg.p = p + plen + 1;
    seg.len = len - plen - 1;
    slash = memchr(seg.p, '/', seg.len);
    stream = slash != NULL;
    if (stream) {
        struct slice rest = {slash + 1, (size_t)(seg.p + seg.len - slash - 1)};
        seg.len = (size_t)(slash - seg.p);
        if (!topic_path_is(rest, "stream")) {
            return topic_path_refuse(err, 404,
                                     "no such route under /v1/topics "
                                     "(docs/http.md)");
        }
    }
    if (seg.len == 0) {
        return topic_path_refuse(err, 404,
                                 "no such route under /v1/topics "
                                 "(docs/http.md)");
    }
    if (stream && !topic_path_is(method, "GET")) {
        *allow = "GET";
        return topic_path_refuse(err, 405,
                                 "use GET /v1/topics/{pattern}/stream");
    }
    if (!stream && !topic_path_is(method, "POST")) {
        *allow = "POST";
        return topic_path_refuse(err, 405, "use POST /v1/topics/{subject}");
    }
    o.route = stream ? TOPIC_PATH_STREAM : TOPIC_PATH_PUBLISH;
    o.name.p = scratch;
    o.name.len = topic_path_decode(scratch, seg, false);
    scratch += o.name.len;
    if (!stream) {
        if (!topic_subject_is_valid(o.name)) {
            return topic_path_refuse(err, 400,
                                     "a subject is 1 to %d bytes of "
                                     "dot-separated tokens of printable "
                                     "ASCII, no '*' or '>' (percent-decoded)",
                                     TOPIC_MAX_LEN);
        }
        if (query.len > 0) {
            return topic_path_refuse(err, 400,
                                     "query: POST /v1/topics/{subject} takes "
                                     "no parameters");
        }
    } else {
        if (!topic_pattern_is_valid(o.name)) {
            return topic_path_refuse(err, 400,
                                     "a pattern is 1 to %d bytes of "
                                     "dot-separated tokens of printable "
                                     "ASCII, '*' for any one, a last '>' "
                                     "for the rest (percent-decoded)",
                                     TOPIC_MAX_LEN);
        }
        st = topic_path_stream_query(query, scratch, &o, err);
        if (st != 0) {
            return st;
        }
    }
    *out = o;
    return 0;
}
