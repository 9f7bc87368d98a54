/* SPDX-License-Identifier: MIT */
/*
 * test_servants.c - libferry's ferry.cache / ferry.kv / ferry.id /
 * ferry.queue / ferry.topic helpers (include/ferry_servants.h) against
 * tests/vectors/
 * client_payloads.json, the vectors every client is tested with: each
 * request encodes to its payload, each reply decodes to its fields (read
 * back through the *_next iterators), each malformed reply and every
 * truncation of a good one is refused with FERRY_EINVALID_ARGUMENT or
 * decodes, and a too-small buffer reports the length it needs. The queue
 * and topic requests are also decoded by the daemon's side of their
 * codecs (queue_codec_decode, topic_codec_decode), which must read back
 * the vectors' arguments, and the topic POLL replies' messages are
 * written again by the daemon's topic_codec_write_msg byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ferry_servants.h"
#include "queue/queue_codec.h"
#include "topic/topic_codec.h"

static json_t *vectors;

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static char *
tohex(const void *p, size_t n)
{
    static char buf[8][4096];
    static int k;
    char *o = buf[k++ & 7];
    assert_true(2 * n < sizeof(buf[0]));
    for (size_t i = 0; i < n; i++) {
        sprintf(o + 2 * i, "%02x", ((const uint8_t *)p)[i]);
    }
    o[2 * n] = 0;
    return o;
}

static const char *
s_of(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v ? json_string_value(v) : NULL;
}

static uint64_t
u64_of(json_t *o, const char *k)
{
    const char *s = s_of(o, k);
    return s ? strtoull(s, NULL, 10) : 0;
}

static uint32_t
u32_of(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v ? (uint32_t)json_integer_value(v) : 0;
}

/* Bytes of args[k] (hex) into a slot of its own. */
static size_t
bytes_of(json_t *o, const char *k, uint8_t *buf, size_t cap, bool *has)
{
    const char *h = s_of(o, k);
    if (has) {
        *has = h != NULL;
    }
    return h ? unhex(h, buf, cap) : 0;
}

static char *
u64s(uint64_t v)
{
    static char b[8][24];
    static int k;
    char *o = b[k++ & 7];
    snprintf(o, 24, "%llu", (unsigned long long)v);
    return o;
}

static unsigned op_code(const char *svc, const char *op);

static size_t
encode(const char *svc, const char *op, json_t *a, uint8_t *dst, size_t cap,
       struct ferry_bytes *keyout)
{
    static uint8_t key[512], val[512], end[512], mk[8][64];
    static struct ferry_bytes keys[8];
    size_t klen = bytes_of(a, "key_hex", key, sizeof(key), NULL);
    size_t vlen = bytes_of(a, "value_hex", val, sizeof(val), NULL);
    keyout->data = key;
    keyout->len = klen;
    if (strcmp(svc, "cache") == 0) {
        static const char *ops[] = {"",      "get",     "get_many", "set",
                                    "add",   "replace", "append",   "prepend",
                                    "cas",   "delete",  "incr",     "decr",
                                    "touch", "gat",     "flush"};
        struct ferry_cache_req q = {0};
        for (unsigned i = 1; i < 15; i++) {
            if (strcmp(op, ops[i]) == 0) {
                q.op = i;
            }
        }
        q.key = key;
        q.key_len = klen;
        q.value = val;
        q.value_len = vlen;
        q.flags = u32_of(a, "flags");
        q.ttl_ms = u32_of(a, "ttl_ms");
        q.delay_ms = u32_of(a, "delay_ms");
        q.cas = u64_of(a, "cas");
        q.delta = u64_of(a, "delta");
        json_t *ks = json_object_get(a, "keys_hex");
        if (ks) {
            size_t i;
            json_t *k;
            json_array_foreach(ks, i, k)
            {
                keys[i].len = unhex(json_string_value(k), mk[i], 64);
                keys[i].data = mk[i];
            }
            q.keys = keys;
            q.n_keys = json_array_size(ks);
        }
        if (q.op == FERRY_CACHE_GET_MANY || q.op == FERRY_CACHE_FLUSH) {
            keyout->len = 0;
        }
        return ferry_cache_encode(&q, dst, cap);
    }
    if (strcmp(svc, "kv") == 0) {
        static const char *ops[] = {"",      "get",   "put",  "delete",
                                    "range", "count", "watch"};
        struct ferry_kv_req q = {0};
        for (unsigned i = 1; i < 7; i++) {
            if (strcmp(op, ops[i]) == 0) {
                q.op = i;
            }
        }
        q.key = key;
        q.key_len = klen;
        q.value = val;
        q.value_len = vlen;
        const char *cond = s_of(a, "cond");
        q.cond = !cond || strcmp(cond, "any") == 0 ? FERRY_KV_ANY
                 : strcmp(cond, "absent") == 0     ? FERRY_KV_IF_ABSENT
                                                   : FERRY_KV_IF_MOD_REV;
        q.rev = u64_of(a, "rev");
        q.end_len = bytes_of(a, "end_hex", end, sizeof(end), &q.has_end);
        q.end = end;
        q.limit = u32_of(a, "limit");
        q.keys_only = json_is_true(json_object_get(a, "keys_only"));
        q.prefix = json_is_true(json_object_get(a, "prefix"));
        q.from_rev = u64_of(a, "from_rev");
        q.wait_ms = u32_of(a, "wait_ms");
        q.max_events = u32_of(a, "max_events");
        return ferry_kv_encode(&q, dst, cap);
    }
    if (strcmp(svc, "queue") == 0) {
        static const char *whichs[] = {"ready", "delayed", "dead", "reserved"};
        static uint8_t payload[512], dedup[300], reason[512];
        static char qname[256], settings[1024];
        struct ferry_queue_req q = {0};
        const char *name = s_of(a, "queue"), *which = s_of(a, "which");
        json_t *set = json_object_get(a, "settings");
        bool has_dedup;

        q.op = op_code(svc, op);
        if (name != NULL) {
            snprintf(qname, sizeof(qname), "%s", name);
            q.queue = qname;
        }
        q.priority =
            (int16_t)json_integer_value(json_object_get(a, "priority"));
        q.delay_ms = json_is_true(json_object_get(a, "backoff"))
                         ? FERRY_QUEUE_RELEASE_BACKOFF
                         : u32_of(a, "delay_ms");
        q.visibility_ms = u32_of(a, "visibility_ms");
        q.max_deliveries = (uint16_t)u32_of(a, "max_deliveries");
        q.payload_len =
            bytes_of(a, "payload_hex", payload, sizeof(payload), NULL);
        q.payload = payload;
        q.dedup_len =
            bytes_of(a, "dedup_hex", dedup, sizeof(dedup), &has_dedup);
        q.dedup = has_dedup ? dedup : NULL;
        q.reason_len = bytes_of(a, "reason_hex", reason, sizeof(reason), NULL);
        q.reason = reason;
        q.wait_ms = u32_of(a, "wait_ms");
        q.id = u64_of(a, "id");
        q.token = u64_of(a, "token");
        for (unsigned i = 0; which != NULL && i < 4; i++) {
            if (strcmp(which, whichs[i]) == 0) {
                q.which = i;
            }
        }
        q.limit = u32_of(a, "limit");
        if (set != NULL) {
            char *t = json_dumps(set, JSON_COMPACT | JSON_PRESERVE_ORDER);
            snprintf(settings, sizeof(settings), "%s", t);
            free(t);
            q.settings = settings;
        }
        keyout->data = qname;
        keyout->len = name != NULL ? strlen(qname) : 0;
        return ferry_queue_encode(&q, dst, cap);
    }
    if (strcmp(svc, "topic") == 0) {
        static uint8_t payload[512];
        static char subject[256], pattern[256], group[300];
        struct ferry_topic_req q = {0};
        const char *subj = s_of(a, "subject"), *pat = s_of(a, "pattern");
        const char *grp = s_of(a, "group"), *pol = s_of(a, "policy");

        q.op = op_code(svc, op);
        snprintf(subject, sizeof(subject), "%s", subj ? subj : "");
        snprintf(pattern, sizeof(pattern), "%s", pat ? pat : "");
        snprintf(group, sizeof(group), "%s", grp ? grp : "");
        q.subject = subject;
        q.pattern = pattern;
        q.group = grp ? group : NULL;
        q.payload_len =
            bytes_of(a, "message_hex", payload, sizeof(payload), NULL);
        q.payload = payload;
        q.max_pending = u32_of(a, "max_pending");
        q.policy = pol && strcmp(pol, "close") == 0 ? FERRY_TOPIC_CLOSE
                                                    : FERRY_TOPIC_DROP_OLDEST;
        q.sub_id = u64_of(a, "sub_id");
        q.wait_ms = u32_of(a, "wait_ms");
        q.max_msgs = u32_of(a, "max_msgs");
        keyout->data = q.op == FERRY_TOPIC_PUBLISH ? subject : pattern;
        keyout->len = q.op == FERRY_TOPIC_PUBLISH     ? strlen(subject)
                      : q.op == FERRY_TOPIC_SUBSCRIBE ? strlen(pattern)
                                                      : 0;
        return ferry_topic_encode(&q, dst, cap);
    }
    keyout->len = 0;
    if (strcmp(op, "next") == 0) {
        return ferry_id_encode(FERRY_ID_NEXT, u32_of(a, "count"), 0, dst, cap);
    }
    return ferry_id_encode(FERRY_ID_DECODE, 0, u64_of(a, "id"), dst, cap);
}

static unsigned
op_code(const char *svc, const char *op)
{
    static const char *cache[] = {"",      "get",     "get_many", "set",
                                  "add",   "replace", "append",   "prepend",
                                  "cas",   "delete",  "incr",     "decr",
                                  "touch", "gat",     "flush"};
    static const char *kv[] = {"",      "get",   "put",  "delete",
                               "range", "count", "watch"};
    if (strcmp(svc, "cache") == 0) {
        for (unsigned i = 1; i < 15; i++) {
            if (strcmp(op, cache[i]) == 0) {
                return i;
            }
        }
    } else if (strcmp(svc, "kv") == 0) {
        for (unsigned i = 1; i < 7; i++) {
            if (strcmp(op, kv[i]) == 0) {
                return i;
            }
        }
    } else if (strcmp(svc, "queue") == 0) {
        static const char *queue[] = {
            "",      "push",   "reserve", "ack",    "release",
            "touch", "bury",   "peek",    "stats",  "redrive",
            "pause", "resume", "purge",   "delete", "configure"};
        for (unsigned i = 1; i < 15; i++) {
            if (strcmp(op, queue[i]) == 0) {
                return i;
            }
        }
    } else if (strcmp(svc, "topic") == 0) {
        static const char *topic[] = {"",     "publish",     "subscribe",
                                      "poll", "unsubscribe", "stats"};
        for (unsigned i = 1; i < 6; i++) {
            if (strcmp(op, topic[i]) == 0) {
                return i;
            }
        }
    } else {
        return strcmp(op, "next") == 0 ? FERRY_ID_NEXT : FERRY_ID_DECODE;
    }
    fail_msg("unknown op %s %s", svc, op);
    return 0;
}

static json_t *
entry_json(const struct ferry_kv_entry *e, bool with_key)
{
    json_t *o = json_object();
    if (with_key) {
        json_object_set_new(o, "key_hex",
                            json_string(tohex(e->key, e->key_len)));
    }
    json_object_set_new(o, "create_rev", json_string(u64s(e->create_rev)));
    json_object_set_new(o, "mod_rev", json_string(u64s(e->mod_rev)));
    json_object_set_new(o, "version", json_string(u64s(e->version)));
    json_object_set_new(o, "value_hex",
                        json_string(tohex(e->value, e->value_len)));
    return o;
}

/* Decodes reply; FERRY_OK with *out the canonical JSON, or the error. */
static ferry_err
decode(const char *svc, const char *opname, const uint8_t *b, size_t n,
       json_t **out)
{
    unsigned op = op_code(svc, opname);
    json_t *o = json_object();
    *out = o;
    if (strcmp(svc, "cache") == 0) {
        struct ferry_cache_reply r;
        ferry_err e = ferry_cache_decode(op, b, n, &r);
        if (e != FERRY_OK) {
            return e;
        }
        json_object_set_new(o, "status",
                            json_string(ferry_sv_status_name(r.status)));
        bool ok = r.status == FERRY_SV_OK;
        switch (op) {
        case FERRY_CACHE_GET:
        case FERRY_CACHE_GAT:
            if (ok) {
                json_object_set_new(o, "flags", json_integer(r.flags));
                json_object_set_new(o, "cas", json_string(u64s(r.cas)));
                json_object_set_new(o, "value_hex",
                                    json_string(tohex(r.value, r.value_len)));
            }
            break;
        case FERRY_CACHE_GET_MANY: {
            json_t *items = json_array();
            struct ferry_cache_item it;
            size_t pos = 0;
            unsigned k = 0;
            while (ferry_cache_next(&r, &pos, &it)) {
                json_t *i = json_object();
                json_object_set_new(
                    i, "status", json_string(ferry_sv_status_name(it.status)));
                if (it.status == FERRY_SV_OK) {
                    json_object_set_new(i, "flags", json_integer(it.flags));
                    json_object_set_new(i, "cas", json_string(u64s(it.cas)));
                    json_object_set_new(
                        i, "value_hex",
                        json_string(tohex(it.value, it.value_len)));
                }
                json_array_append_new(items, i);
                k++;
            }
            assert_int_equal(k, r.n_items);
            json_object_set_new(o, "items", items);
            break;
        }
        case FERRY_CACHE_INCR:
        case FERRY_CACHE_DECR:
            if (ok) {
                json_object_set_new(o, "value", json_string(u64s(r.number)));
            }
            break;
        case FERRY_CACHE_DELETE:
        case FERRY_CACHE_TOUCH:
        case FERRY_CACHE_FLUSH:
            break;
        default:
            if (ok) {
                json_object_set_new(o, "cas", json_string(u64s(r.cas)));
            }
        }
        return FERRY_OK;
    }
    if (strcmp(svc, "kv") == 0) {
        struct ferry_kv_reply r;
        ferry_err e = ferry_kv_decode(op, b, n, &r);
        if (e != FERRY_OK) {
            return e;
        }
        json_object_set_new(o, "status",
                            json_string(ferry_sv_status_name(r.status)));
        json_object_set_new(o, "rev", json_string(u64s(r.rev)));
        if (op == FERRY_KV_GET && r.status == FERRY_SV_OK) {
            json_t *en = entry_json(&r.entry, false);
            json_object_update(o, en);
            json_decref(en);
        }
        if (op == FERRY_KV_COUNT) {
            json_object_set_new(o, "count", json_string(u64s(r.count)));
        }
        if (op == FERRY_KV_RANGE || op == FERRY_KV_WATCH) {
            if (op == FERRY_KV_RANGE) {
                json_object_set_new(o, "more", json_boolean(r.more));
            }
            json_t *list = json_array();
            struct ferry_kv_entry en;
            size_t pos = 0;
            while (ferry_kv_next(&r, &pos, &en)) {
                json_t *i = entry_json(&en, true);
                if (op == FERRY_KV_WATCH) {
                    json_object_set_new(
                        i, "type", json_string(en.type ? "delete" : "put"));
                }
                json_array_append_new(list, i);
            }
            assert_int_equal(json_array_size(list), r.n);
            json_object_set_new(o, op == FERRY_KV_RANGE ? "items" : "events",
                                list);
        }
        return FERRY_OK;
    }
    if (strcmp(svc, "queue") == 0) {
        struct ferry_queue_reply r;
        ferry_err e = ferry_queue_decode(op, b, n, &r);
        if (e != FERRY_OK) {
            return e;
        }
        json_object_set_new(o, "status",
                            json_string(ferry_queue_status_name(r.status)));
        if (r.status != FERRY_QUEUE_OK) {
            return FERRY_OK;
        }
        switch (op) {
        case FERRY_QUEUE_PUSH:
            json_object_set_new(o, "id", json_string(u64s(r.id)));
            json_object_set_new(o, "dup", json_boolean(r.dup));
            break;
        case FERRY_QUEUE_RESERVE:
            json_object_set_new(o, "id", json_string(u64s(r.id)));
            json_object_set_new(o, "token", json_string(u64s(r.token)));
            json_object_set_new(o, "attempts", json_integer(r.attempts));
            json_object_set_new(o, "priority", json_integer(r.priority));
            json_object_set_new(o, "payload_hex",
                                json_string(tohex(r.payload, r.payload_len)));
            break;
        case FERRY_QUEUE_TOUCH:
            json_object_set_new(o, "visibility_ms",
                                json_integer(r.visibility_ms));
            break;
        case FERRY_QUEUE_PEEK: {
            json_t *list = json_array();
            struct ferry_queue_entry en;
            size_t pos = 0;
            while (ferry_queue_next(&r, &pos, &en)) {
                json_t *i = json_object();
                json_object_set_new(i, "id", json_string(u64s(en.id)));
                json_object_set_new(i, "attempts", json_integer(en.attempts));
                json_object_set_new(i, "priority", json_integer(en.priority));
                json_object_set_new(
                    i, "state", json_string(ferry_queue_state_name(en.state)));
                json_object_set_new(i, "age_ms", json_string(u64s(en.age_ms)));
                json_object_set_new(
                    i, "reason_hex",
                    json_string(tohex(en.reason, en.reason_len)));
                json_object_set_new(
                    i, "payload_hex",
                    json_string(tohex(en.payload, en.payload_len)));
                json_array_append_new(list, i);
            }
            assert_int_equal(json_array_size(list), r.n);
            json_object_set_new(o, "entries", list);
            break;
        }
        case FERRY_QUEUE_STATS:
        case FERRY_QUEUE_CONFIGURE: {
            json_t *doc = json_loadb(r.json, r.json_len, 0, NULL);
            if (doc == NULL) {
                /* libferry hands JSON over unparsed: the test's own
                 * truncations may cut it; only those are not JSON. */
                return FERRY_EINVALID_ARGUMENT;
            }
            json_object_set_new(
                o, op == FERRY_QUEUE_STATS ? "stats" : "settings", doc);
            break;
        }
        case FERRY_QUEUE_REDRIVE:
            json_object_set_new(o, "moved", json_string(u64s(r.count)));
            break;
        case FERRY_QUEUE_PURGE:
            json_object_set_new(o, "removed", json_string(u64s(r.count)));
            break;
        default:
            break;
        }
        return FERRY_OK;
    }
    if (strcmp(svc, "topic") == 0) {
        struct ferry_topic_reply r;
        ferry_err e = ferry_topic_decode(op, b, n, &r);
        if (e != FERRY_OK) {
            return e;
        }
        json_object_set_new(o, "status",
                            json_string(ferry_topic_status_name(r.status)));
        switch (op) {
        case FERRY_TOPIC_PUBLISH:
            json_object_set_new(o, "receivers", json_integer(r.receivers));
            break;
        case FERRY_TOPIC_SUBSCRIBE:
            json_object_set_new(o, "sub_id", json_string(u64s(r.sub_id)));
            break;
        case FERRY_TOPIC_POLL:
            if (r.status == FERRY_TOPIC_NOT_FOUND) {
                break;
            }
            json_object_set_new(o, "dropped", json_string(u64s(r.dropped)));
            if (r.status == FERRY_TOPIC_OK) {
                json_t *list = json_array();
                struct ferry_topic_msg m;
                size_t pos = 0;
                while (ferry_topic_next(&r, &pos, &m)) {
                    json_t *i = json_object();
                    json_object_set_new(i, "seq", json_string(u64s(m.seq)));
                    json_object_set_new(i, "subject",
                                        json_stringn(m.subject, m.subject_len));
                    json_object_set_new(
                        i, "payload_hex",
                        json_string(tohex(m.payload, m.payload_len)));
                    json_array_append_new(list, i);
                }
                assert_int_equal(json_array_size(list), r.n);
                assert_int_equal(pos, r.messages_len);
                json_object_set_new(o, "messages", list);
            }
            break;
        case FERRY_TOPIC_STATS:
            if (r.status == FERRY_TOPIC_OK) {
                json_t *doc = json_loadb(r.json, r.json_len, 0, NULL);
                if (doc == NULL) {
                    /* Only the test's own truncations cut the JSON. */
                    return FERRY_EINVALID_ARGUMENT;
                }
                json_object_set_new(o, "stats", doc);
            }
            break;
        default:
            break;
        }
        return FERRY_OK;
    }
    struct ferry_id_reply r;
    ferry_err e = ferry_id_decode_reply(op, b, n, &r);
    if (e != FERRY_OK) {
        return e;
    }
    json_object_set_new(o, "status",
                        json_string(ferry_sv_status_name(r.status)));
    if (op == FERRY_ID_NEXT) {
        json_t *ids = json_array();
        for (uint32_t i = 0; i < r.n; i++) {
            json_array_append_new(ids, json_string(u64s(ferry_id_at(&r, i))));
        }
        json_object_set_new(o, "ids", ids);
    } else {
        json_object_set_new(o, "unix_ms", json_string(u64s(r.unix_ms)));
        json_object_set_new(o, "node", json_integer(r.node));
        json_object_set_new(o, "seq", json_integer(r.seq));
    }
    return FERRY_OK;
}

static void
test_requests(void **state)
{
    (void)state;
    json_t *reqs = json_object_get(vectors, "requests"), *v;
    size_t i;
    assert_true(json_array_size(reqs) > 20);
    json_array_foreach(reqs, i, v)
    {
        uint8_t buf[1024];
        struct ferry_bytes key;
        const char *svc = s_of(v, "service"), *op = s_of(v, "op");
        size_t n =
            encode(svc, op, json_object_get(v, "args"), buf, sizeof(buf), &key);
        if (strcmp(tohex(buf, n), s_of(v, "payload_hex")) != 0) {
            fail_msg("%s %s: payload %s, want %s", svc, op, tohex(buf, n),
                     s_of(v, "payload_hex"));
        }
        assert_string_equal(tohex(key.data, key.len), s_of(v, "key_hex"));
        /* A buffer one byte short: the length needed, buf untouched past it. */
        uint8_t small[1024];
        struct ferry_bytes k2;
        assert_int_equal(
            encode(svc, op, json_object_get(v, "args"), small, n - 1, &k2), n);
    }
}

static void
test_replies(void **state)
{
    (void)state;
    json_t *reps = json_object_get(vectors, "replies"), *v;
    size_t i;
    assert_true(json_array_size(reps) > 40);
    json_array_foreach(reps, i, v)
    {
        uint8_t buf[1024];
        size_t n = unhex(s_of(v, "reply_hex"), buf, sizeof(buf));
        const char *svc = s_of(v, "service"), *op = s_of(v, "op");
        json_t *got;
        ferry_err e = decode(svc, op, buf, n, &got);
        if (json_object_get(v, "error")) {
            if (e != FERRY_EINVALID_ARGUMENT) {
                fail_msg("%s %s %s: decoded a malformed reply", svc, op,
                         s_of(v, "reply_hex"));
            }
        } else {
            assert_int_equal(e, FERRY_OK);
            if (!json_equal(got, json_object_get(v, "result"))) {
                char *g = json_dumps(got, JSON_SORT_KEYS);
                char *w =
                    json_dumps(json_object_get(v, "result"), JSON_SORT_KEYS);
                fail_msg("%s %s: got %s, want %s", svc, op, g, w);
            }
        }
        json_decref(got);
    }
}

static void
test_truncations(void **state)
{
    (void)state;
    json_t *reps = json_object_get(vectors, "replies"), *v;
    size_t i;
    unsigned refused = 0;
    json_array_foreach(reps, i, v)
    {
        uint8_t buf[1024];
        size_t n = unhex(s_of(v, "reply_hex"), buf, sizeof(buf));
        for (size_t k = 0; k < n; k++) {
            /* A copy of exactly k bytes, so ASan sees any read past it. */
            uint8_t *cut = malloc(k ? k : 1);
            memcpy(cut, buf, k);
            json_t *got;
            ferry_err e =
                decode(s_of(v, "service"), s_of(v, "op"), cut, k, &got);
            assert_true(e == FERRY_OK || e == FERRY_EINVALID_ARGUMENT);
            refused += e != FERRY_OK;
            json_decref(got);
            free(cut);
        }
    }
    assert_true(refused > 100);
}

/* The daemon's decoder reads each queue request vector back to its args,
 * and re-encodes it byte for byte. */
static void
test_queue_daemon_side(void **state)
{
    (void)state;
    json_t *reqs = json_object_get(vectors, "requests"), *v;
    size_t i;
    unsigned n = 0;
    json_array_foreach(reqs, i, v)
    {
        uint8_t key[256], pl[1024], out[1024];
        char err[QUEUE_CODEC_ERR_SIZE];
        struct queue_req r;
        json_t *a = json_object_get(v, "args");
        if (strcmp(s_of(v, "service"), "queue") != 0) {
            continue;
        }
        size_t kl = unhex(s_of(v, "key_hex"), key, sizeof(key));
        size_t pn = unhex(s_of(v, "payload_hex"), pl, sizeof(pl));
        if (queue_codec_decode((struct slice){key, kl}, (struct slice){pl, pn},
                               &r, err) != FERRY_OK) {
            fail_msg("queue %s: the daemon refuses it: %s", s_of(v, "op"), err);
        }
        assert_int_equal(r.op, op_code("queue", s_of(v, "op")));
        switch (r.op) {
        case QUEUE_OP_PUSH:
            assert_int_equal(r.priority, (int16_t)json_integer_value(
                                             json_object_get(a, "priority")));
            assert_int_equal(r.delay_ms, u32_of(a, "delay_ms"));
            assert_int_equal(r.visibility_ms, u32_of(a, "visibility_ms"));
            assert_int_equal(r.max_deliveries, u32_of(a, "max_deliveries"));
            assert_string_equal(tohex(r.dedup.p, r.dedup.len),
                                s_of(a, "dedup_hex") ? s_of(a, "dedup_hex")
                                                     : "");
            assert_string_equal(tohex(r.payload.p, r.payload.len),
                                s_of(a, "payload_hex"));
            break;
        case QUEUE_OP_RESERVE:
            assert_int_equal(r.wait_ms, u32_of(a, "wait_ms"));
            assert_int_equal(r.visibility_ms, u32_of(a, "visibility_ms"));
            break;
        case QUEUE_OP_ACK:
        case QUEUE_OP_RELEASE:
        case QUEUE_OP_TOUCH:
        case QUEUE_OP_BURY:
            assert_true(r.id == u64_of(a, "id"));
            assert_true(r.token == u64_of(a, "token"));
            if (r.op == QUEUE_OP_RELEASE) {
                assert_int_equal(r.delay_ms,
                                 json_is_true(json_object_get(a, "backoff"))
                                     ? QUEUE_RELEASE_BACKOFF
                                     : u32_of(a, "delay_ms"));
            } else if (r.op == QUEUE_OP_TOUCH) {
                assert_int_equal(r.visibility_ms, u32_of(a, "visibility_ms"));
            } else if (r.op == QUEUE_OP_BURY) {
                assert_string_equal(
                    tohex(r.reason.p, r.reason.len),
                    s_of(a, "reason_hex") ? s_of(a, "reason_hex") : "");
            }
            break;
        case QUEUE_OP_PEEK:
            assert_int_equal(r.limit, u32_of(a, "limit"));
            break;
        case QUEUE_OP_REDRIVE:
            assert_int_equal(r.limit, u32_of(a, "limit"));
            break;
        }
        assert_int_equal(queue_codec_write_request(out, &r), pn);
        assert_memory_equal(out, pl, pn);
        n++;
    }
    assert_true(n >= 20);
}

/* The daemon's decoder reads each topic request vector back to its args
 * (with the vector's key as the routing key), and re-encodes it byte for
 * byte; each POLL reply's messages are written again by the daemon's
 * topic_codec_write_msg, byte for byte. */
static void
test_topic_daemon_side(void **state)
{
    (void)state;
    json_t *reqs = json_object_get(vectors, "requests"), *v;
    json_t *reps = json_object_get(vectors, "replies");
    size_t i;
    unsigned n = 0, polls = 0;
    json_array_foreach(reqs, i, v)
    {
        uint8_t key[256], pl[1024], out[1024];
        char err[TOPIC_CODEC_ERR_SIZE];
        struct topic_req r;
        json_t *a = json_object_get(v, "args");
        const char *g = s_of(a, "group"), *pol = s_of(a, "policy");
        if (strcmp(s_of(v, "service"), "topic") != 0) {
            continue;
        }
        size_t kl = unhex(s_of(v, "key_hex"), key, sizeof(key));
        size_t pn = unhex(s_of(v, "payload_hex"), pl, sizeof(pl));
        if (topic_codec_decode((struct slice){key, kl}, (struct slice){pl, pn},
                               &r, err) != FERRY_OK) {
            fail_msg("topic %s: the daemon refuses it: %s", s_of(v, "op"), err);
        }
        assert_int_equal(r.op, op_code("topic", s_of(v, "op")));
        switch (r.op) {
        case TOPIC_OP_PUBLISH:
            assert_int_equal(r.subject.len, strlen(s_of(a, "subject")));
            assert_memory_equal(r.subject.p, s_of(a, "subject"), r.subject.len);
            assert_string_equal(tohex(r.message.p, r.message.len),
                                s_of(a, "message_hex"));
            break;
        case TOPIC_OP_SUBSCRIBE:
            assert_int_equal(r.pattern.len, strlen(s_of(a, "pattern")));
            assert_memory_equal(r.pattern.p, s_of(a, "pattern"), r.pattern.len);
            assert_int_equal(r.group.len, g ? strlen(g) : 0);
            if (g != NULL) {
                assert_memory_equal(r.group.p, g, r.group.len);
            }
            assert_int_equal(r.max_pending, u32_of(a, "max_pending"));
            assert_int_equal(r.policy, pol && strcmp(pol, "close") == 0
                                           ? TOPIC_POLICY_CLOSE
                                           : TOPIC_POLICY_DROP_OLDEST);
            break;
        case TOPIC_OP_POLL:
            assert_true(r.sub_id == u64_of(a, "sub_id"));
            assert_int_equal(r.wait_ms, u32_of(a, "wait_ms"));
            assert_int_equal(r.max_msgs, u32_of(a, "max_msgs"));
            break;
        case TOPIC_OP_UNSUBSCRIBE:
            assert_true(r.sub_id == u64_of(a, "sub_id"));
            break;
        case TOPIC_OP_STATS:
            assert_int_equal(r.one, s_of(a, "sub_id") != NULL);
            assert_true(r.sub_id == u64_of(a, "sub_id"));
            break;
        }
        assert_int_equal(topic_codec_write_request(out, &r), pn);
        assert_memory_equal(out, pl, pn);
        n++;
    }
    assert_true(n >= 10);
    json_array_foreach(reps, i, v)
    {
        uint8_t rep[1024], out[1024];
        struct topic_reply r;
        json_t *res = json_object_get(v, "result"), *msgs, *m;
        size_t k, off = TOPIC_POLL_HEAD;
        if (strcmp(s_of(v, "service"), "topic") != 0 ||
            strcmp(s_of(v, "op"), "poll") != 0 || res == NULL ||
            strcmp(s_of(res, "status"), "OK") != 0) {
            continue;
        }
        size_t rn = unhex(s_of(v, "reply_hex"), rep, sizeof(rep));
        assert_int_equal(topic_codec_decode_reply(TOPIC_OP_POLL,
                                                  (struct slice){rep, rn}, &r),
                         FERRY_OK);
        msgs = json_object_get(res, "messages");
        json_array_foreach(msgs, k, m)
        {
            uint8_t pb[512];
            const char *subj = s_of(m, "subject");
            size_t pl = unhex(s_of(m, "payload_hex"), pb, sizeof(pb));
            off += topic_codec_write_msg(
                out + off, u64_of(m, "seq"),
                (struct slice){(const uint8_t *)subj, strlen(subj)},
                (struct slice){pb, pl});
        }
        assert_int_equal(off, rn);
        assert_memory_equal(out + TOPIC_POLL_HEAD, rep + TOPIC_POLL_HEAD,
                            rn - TOPIC_POLL_HEAD);
        polls++;
    }
    assert_true(polls >= 3);
}

static void
test_bad_args(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct ferry_cache_req q = {.op = 99};
    assert_int_equal(ferry_cache_encode(&q, buf, sizeof(buf)), 0);
    struct ferry_kv_req k = {.op = FERRY_KV_PUT, .cond = 7};
    assert_int_equal(ferry_kv_encode(&k, buf, sizeof(buf)), 0);
    struct ferry_cache_reply r;
    assert_int_equal(ferry_cache_decode(99, "\0", 1, &r),
                     FERRY_EINVALID_ARGUMENT);
    struct ferry_id_reply id;
    /* n so large that n * 8 overflows a 32-bit product. */
    uint8_t big[] = {0, 0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(
        ferry_id_decode_reply(FERRY_ID_NEXT, big, sizeof(big), &id),
        FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_id_at(&id, 0), 0);
    assert_string_equal(ferry_sv_status_name(9), "?");
    struct ferry_queue_req qq = {.op = 15};
    assert_int_equal(ferry_queue_encode(&qq, buf, sizeof(buf)), 0);
    qq = (struct ferry_queue_req){
        .op = FERRY_QUEUE_PUSH, .dedup = buf, .dedup_len = 256};
    assert_int_equal(ferry_queue_encode(&qq, buf, sizeof(buf)), 0);
    qq = (struct ferry_queue_req){.op = FERRY_QUEUE_PEEK, .which = 4};
    assert_int_equal(ferry_queue_encode(&qq, buf, sizeof(buf)), 0);
    qq = (struct ferry_queue_req){.op = FERRY_QUEUE_PEEK, .limit = 65536};
    assert_int_equal(ferry_queue_encode(&qq, buf, sizeof(buf)), 0);
    qq = (struct ferry_queue_req){.op = FERRY_QUEUE_CONFIGURE};
    assert_int_equal(ferry_queue_encode(&qq, buf, sizeof(buf)), 0);
    struct ferry_queue_reply qr;
    assert_int_equal(ferry_queue_decode(0, "\0", 1, &qr),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_queue_decode(15, "\0", 1, &qr),
                     FERRY_EINVALID_ARGUMENT);
    assert_string_equal(ferry_queue_status_name(4), "?");
    assert_string_equal(ferry_queue_state_name(3), "?");
    char longg[300];
    memset(longg, 'g', 256);
    longg[256] = '\0';
    struct ferry_topic_req tq = {.op = 6};
    assert_int_equal(ferry_topic_encode(&tq, buf, sizeof(buf)), 0);
    tq = (struct ferry_topic_req){.op = 0};
    assert_int_equal(ferry_topic_encode(&tq, buf, sizeof(buf)), 0);
    tq = (struct ferry_topic_req){.op = FERRY_TOPIC_SUBSCRIBE, .group = longg};
    assert_int_equal(ferry_topic_encode(&tq, buf, sizeof(buf)), 0);
    longg[255] = '\0';
    assert_int_equal(ferry_topic_encode(&tq, buf, sizeof(buf)),
                     1 + 1 + 255 + 5);
    tq = (struct ferry_topic_req){.op = FERRY_TOPIC_SUBSCRIBE, .policy = 2};
    assert_int_equal(ferry_topic_encode(&tq, buf, sizeof(buf)), 0);
    tq = (struct ferry_topic_req){.op = FERRY_TOPIC_SUBSCRIBE, .group = ""};
    assert_int_equal(ferry_topic_encode(&tq, buf, sizeof(buf)), 7);
    assert_int_equal(buf[1], 0);
    struct ferry_topic_reply tr;
    assert_int_equal(ferry_topic_decode(0, "\0", 1, &tr),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_topic_decode(6, "\0", 1, &tr),
                     FERRY_EINVALID_ARGUMENT);
    /* A reply with no messages walks none. */
    size_t pos = 0;
    struct ferry_topic_msg tm;
    assert_int_equal(ferry_topic_decode(FERRY_TOPIC_UNSUBSCRIBE, "\0", 1, &tr),
                     FERRY_OK);
    assert_false(ferry_topic_next(&tr, &pos, &tm));
    assert_string_equal(ferry_topic_status_name(2), "?");
    assert_string_equal(ferry_topic_status_name(4), "?");
    assert_string_equal(ferry_topic_policy_name(1), "close");
    assert_string_equal(ferry_topic_policy_name(2), "?");
}

int
main(void)
{
    const char *path = getenv("FERRY_SERVANT_VECTORS");
    json_error_t err;
    vectors = json_load_file(
        path ? path : "tests/vectors/client_payloads.json", 0, &err);
    if (vectors == NULL) {
        fprintf(stderr, "test_servants: %s: %s\n", err.source, err.text);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_queue_daemon_side),
        cmocka_unit_test(test_topic_daemon_side),
        cmocka_unit_test(test_bad_args),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(vectors);
    return rc;
}
