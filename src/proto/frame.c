/* SPDX-License-Identifier: MIT */
/*
 * frame.c - encoding and decoding of ferry frames (docs/protocol.md).
 *
 * Every connection's input passes through frame_decode() and one of the
 * frame_parse_* functions, so these are the first line against bad input:
 * each reads only inside the bytes it was given and checks every declared
 * length before using it.
 */
#include "proto/frame.h"

#include <assert.h>
#include <string.h>

#include "core/be.h"

static inline uint8_t *
put_bytes(uint8_t *p, struct slice s)
{
    if (s.len > 0) {
        memcpy(p, s.p, s.len);
    }
    return p + s.len;
}

/* A cursor over a frame body; every take checks the bytes left. */
struct reader {
    const uint8_t *p; /* borrowed: next byte */
    size_t left;      /* bytes after p */
};

static bool
take_u8(struct reader *r, uint8_t *v)
{
    if (r->left < 1) {
        return false;
    }
    *v = r->p[0];
    r->p++;
    r->left--;
    return true;
}

static bool
take_u16(struct reader *r, uint16_t *v)
{
    if (r->left < 2) {
        return false;
    }
    *v = be_get_u16(r->p);
    r->p += 2;
    r->left -= 2;
    return true;
}

static bool
take_u32(struct reader *r, uint32_t *v)
{
    if (r->left < 4) {
        return false;
    }
    *v = be_get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return true;
}

static bool
take_bytes(struct reader *r, size_t n, struct slice *out)
{
    if (r->left < n) {
        return false;
    }
    out->p = r->p;
    out->len = n;
    r->p += n;
    r->left -= n;
    return true;
}

/* A u16 length, checked against max, then that many bytes. */
static bool
take_str16(struct reader *r, size_t max, struct slice *out)
{
    uint16_t n;

    return take_u16(r, &n) && n <= max && take_bytes(r, n, out);
}

static struct reader
reader_of(const struct frame *f)
{
    struct reader r = {f->body.p, f->body.len};
    return r;
}

ferry_err
frame_decode(const uint8_t *buf, size_t len, uint32_t max_body,
             struct frame *out, size_t *consumed)
{
    uint32_t body_len;
    uint8_t type;

    if (len < FRAME_HEADER_SIZE) {
        *consumed = 0;
        return FERRY_OK;
    }
    body_len = be_get_u32(buf);
    type = buf[4];
    if (body_len > max_body) {
        return FERRY_ETOO_BIG;
    }
    if (type == 0 || type > FRAME_TYPE_MAX) {
        return FERRY_EUNKNOWN_TYPE;
    }
    if (len - FRAME_HEADER_SIZE < body_len) {
        *consumed = 0;
        return FERRY_OK;
    }
    out->type = type;
    out->flags = buf[5];
    out->id = be_get_u64(buf + 8);
    out->body.p = buf + FRAME_HEADER_SIZE;
    out->body.len = body_len;
    *consumed = FRAME_HEADER_SIZE + (size_t)body_len;
    return FERRY_OK;
}

ferry_err
frame_parse_hello(const struct frame *f, struct frame_hello *out)
{
    struct reader r = reader_of(f);
    struct frame_hello h;
    uint8_t reserved;

    h.max_frame = 0;
    if (f->type != FRAME_HELLO || !take_u16(&r, &h.version) ||
        !take_u8(&r, &h.role) || !take_u8(&r, &reserved) ||
        !take_u32(&r, &h.heartbeat_ms) ||
        !take_str16(&r, FRAME_MAX_NAME, &h.name) ||
        !take_str16(&r, FRAME_MAX_NAME, &h.token)) {
        return FERRY_EPROTO;
    }
    if (h.version >= FRAME_VERSION_2 && !take_u32(&r, &h.max_frame)) {
        return FERRY_EPROTO;
    }
    if (h.version <= FRAME_VERSION_2 && r.left != 0) {
        return FERRY_EPROTO;
    }
    if (h.role < FRAME_ROLE_CALLER || h.role > FRAME_ROLE_PEER) {
        return FERRY_EPROTO;
    }
    *out = h;
    return FERRY_OK;
}

ferry_err
frame_parse_hello_ok(const struct frame *f, struct frame_hello_ok *out)
{
    struct reader r = reader_of(f);
    struct frame_hello_ok h;
    uint16_t reserved;

    h.max_deadline_ms = 0;
    h.default_deadline_ms = 0;
    if (f->type != FRAME_HELLO_OK || !take_u16(&r, &h.version) ||
        !take_u16(&r, &reserved) || !take_u32(&r, &h.heartbeat_ms) ||
        !take_u32(&r, &h.max_frame) ||
        !take_str16(&r, FRAME_MAX_NAME, &h.name)) {
        return FERRY_EPROTO;
    }
    if (h.version >= FRAME_VERSION_2 &&
        (!take_u32(&r, &h.max_deadline_ms) ||
         !take_u32(&r, &h.default_deadline_ms))) {
        return FERRY_EPROTO;
    }
    if (h.version <= FRAME_VERSION_2 && r.left != 0) {
        return FERRY_EPROTO;
    }
    *out = h;
    return FERRY_OK;
}

ferry_err
frame_parse_request(const struct frame *f, struct frame_request *out)
{
    struct reader r = reader_of(f);
    struct frame_request q;
    uint16_t service_len, key_len;

    if (f->type != FRAME_REQUEST || !take_u32(&r, &q.deadline_ms) ||
        !take_u16(&r, &service_len) || !take_u16(&r, &key_len)) {
        return FERRY_EPROTO;
    }
    if (service_len == 0 || service_len > FRAME_MAX_NAME ||
        key_len > FRAME_MAX_KEY || !take_bytes(&r, service_len, &q.service) ||
        !take_bytes(&r, key_len, &q.key)) {
        return FERRY_EPROTO;
    }
    q.payload.p = r.p;
    q.payload.len = r.left;
    *out = q;
    return FERRY_OK;
}

ferry_err
frame_parse_error(const struct frame *f, struct frame_error *out)
{
    struct reader r = reader_of(f);
    struct frame_error e;

    if (f->type != FRAME_ERROR || !take_u16(&r, &e.code) ||
        !take_str16(&r, FRAME_MAX_ERRMSG, &e.msg) || r.left != 0) {
        return FERRY_EPROTO;
    }
    *out = e;
    return FERRY_OK;
}

ferry_err
frame_parse_register(const struct frame *f, struct frame_register *out)
{
    struct reader r = reader_of(f);
    struct frame_register g;

    if (f->type != FRAME_REGISTER || !take_u32(&r, &g.credit) ||
        !take_str16(&r, FRAME_MAX_NAME, &g.service) || r.left != 0) {
        return FERRY_EPROTO;
    }
    /* Credit 0 or above FRAME_MAX_CREDIT and an empty name are values the
     * broker refuses (INVALID_ARGUMENT): the frame itself is well formed. */
    *out = g;
    return FERRY_OK;
}

ferry_err
frame_check_empty(const struct frame *f)
{
    return f->body.len == 0 ? FERRY_OK : FERRY_EPROTO;
}

size_t
frame_hello_size(uint16_t version, size_t name_len, size_t token_len)
{
    return FRAME_HEADER_SIZE + 2 + 1 + 1 + 4 + 2 + name_len + 2 + token_len +
           (version >= FRAME_VERSION_2 ? 4 : 0);
}

size_t
frame_hello_ok_size(uint16_t version, size_t name_len)
{
    return FRAME_HEADER_SIZE + 2 + 2 + 4 + 4 + 2 + name_len +
           (version >= FRAME_VERSION_2 ? 8 : 0);
}

size_t
frame_request_size(size_t service_len, size_t key_len, size_t payload_len)
{
    return FRAME_HEADER_SIZE + 4 + 2 + 2 + service_len + key_len + payload_len;
}

size_t
frame_error_size(size_t msg_len)
{
    if (msg_len > FRAME_MAX_ERRMSG) {
        msg_len = FRAME_MAX_ERRMSG;
    }
    return FRAME_HEADER_SIZE + 2 + 2 + msg_len;
}

size_t
frame_register_size(size_t service_len)
{
    return FRAME_HEADER_SIZE + 4 + 2 + service_len;
}

bool
frame_request_fits(size_t service_len, size_t key_len, size_t payload_len,
                   uint32_t max_body)
{
    if (service_len == 0 || service_len > FRAME_MAX_NAME ||
        key_len > FRAME_MAX_KEY || payload_len > max_body) {
        return false;
    }
    return frame_request_size(service_len, key_len, payload_len) -
               FRAME_HEADER_SIZE <=
           max_body;
}

size_t
frame_write_header(uint8_t *dst, uint8_t type, uint8_t flags, uint64_t id,
                   uint32_t body_len)
{
    be_put_u32(dst, body_len);
    dst[4] = type;
    dst[5] = flags;
    dst[6] = 0;
    dst[7] = 0;
    be_put_u64(dst + 8, id);
    return FRAME_HEADER_SIZE;
}

size_t
frame_write_hello(uint8_t *dst, uint16_t version, uint8_t role,
                  uint32_t heartbeat_ms, uint32_t max_frame, struct slice name,
                  struct slice token)
{
    size_t size = frame_hello_size(version, name.len, token.len);
    uint8_t *p = dst + FRAME_HEADER_SIZE;

    assert(name.len <= FRAME_MAX_NAME && token.len <= FRAME_MAX_NAME);
    frame_write_header(dst, FRAME_HELLO, 0, 0,
                       (uint32_t)(size - FRAME_HEADER_SIZE));
    p = be_put_u16(p, version);
    *p++ = role;
    *p++ = 0;
    p = be_put_u32(p, heartbeat_ms);
    p = be_put_u16(p, (uint16_t)name.len);
    p = put_bytes(p, name);
    p = be_put_u16(p, (uint16_t)token.len);
    p = put_bytes(p, token);
    if (version >= FRAME_VERSION_2) {
        be_put_u32(p, max_frame);
    }
    return size;
}

size_t
frame_write_hello_ok(uint8_t *dst, uint16_t version, uint32_t heartbeat_ms,
                     uint32_t max_frame, uint32_t max_deadline_ms,
                     uint32_t default_deadline_ms, struct slice name)
{
    size_t size = frame_hello_ok_size(version, name.len);
    uint8_t *p = dst + FRAME_HEADER_SIZE;

    assert(name.len <= FRAME_MAX_NAME);
    frame_write_header(dst, FRAME_HELLO_OK, 0, 0,
                       (uint32_t)(size - FRAME_HEADER_SIZE));
    p = be_put_u16(p, version);
    p = be_put_u16(p, 0);
    p = be_put_u32(p, heartbeat_ms);
    p = be_put_u32(p, max_frame);
    p = be_put_u16(p, (uint16_t)name.len);
    p = put_bytes(p, name);
    if (version >= FRAME_VERSION_2) {
        p = be_put_u32(p, max_deadline_ms);
        be_put_u32(p, default_deadline_ms);
    }
    return size;
}

size_t
frame_write_request(uint8_t *dst, uint64_t id, uint8_t flags,
                    uint32_t deadline_ms, struct slice service,
                    struct slice key, struct slice payload)
{
    size_t size = frame_request_size(service.len, key.len, payload.len);
    uint8_t *p = dst + FRAME_HEADER_SIZE;

    assert(service.len > 0 && service.len <= FRAME_MAX_NAME);
    assert(key.len <= FRAME_MAX_KEY);
    assert(size - FRAME_HEADER_SIZE <= UINT32_MAX);
    frame_write_header(dst, FRAME_REQUEST, flags, id,
                       (uint32_t)(size - FRAME_HEADER_SIZE));
    p = be_put_u32(p, deadline_ms);
    p = be_put_u16(p, (uint16_t)service.len);
    p = be_put_u16(p, (uint16_t)key.len);
    p = put_bytes(p, service);
    p = put_bytes(p, key);
    put_bytes(p, payload);
    return size;
}

size_t
frame_write_reply_header(uint8_t *dst, uint64_t id, uint32_t payload_len)
{
    return frame_write_header(dst, FRAME_REPLY, 0, id, payload_len);
}

size_t
frame_write_error(uint8_t *dst, uint64_t id, uint16_t code, struct slice msg)
{
    size_t size;
    uint8_t *p = dst + FRAME_HEADER_SIZE;

    if (msg.len > FRAME_MAX_ERRMSG) {
        msg.len = FRAME_MAX_ERRMSG;
    }
    size = frame_error_size(msg.len);
    frame_write_header(dst, FRAME_ERROR, 0, id,
                       (uint32_t)(size - FRAME_HEADER_SIZE));
    p = be_put_u16(p, code);
    p = be_put_u16(p, (uint16_t)msg.len);
    put_bytes(p, msg);
    return size;
}

size_t
frame_write_register(uint8_t *dst, uint64_t id, uint32_t credit,
                     struct slice service)
{
    size_t size = frame_register_size(service.len);
    uint8_t *p = dst + FRAME_HEADER_SIZE;

    assert(service.len <= FRAME_MAX_NAME);
    frame_write_header(dst, FRAME_REGISTER, 0, id,
                       (uint32_t)(size - FRAME_HEADER_SIZE));
    p = be_put_u32(p, credit);
    p = be_put_u16(p, (uint16_t)service.len);
    put_bytes(p, service);
    return size;
}

size_t
frame_write_empty(uint8_t *dst, uint8_t type, uint64_t id)
{
    return frame_write_header(dst, type, 0, id, 0);
}

struct slice
slice_str(const char *s)
{
    struct slice r = {(const uint8_t *)s, s ? strlen(s) : 0};
    return r;
}

bool
slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

const char *
frame_type_name(uint8_t type)
{
    static const char *const names[] = {
        [FRAME_HELLO] = "HELLO",       [FRAME_HELLO_OK] = "HELLO_OK",
        [FRAME_REQUEST] = "REQUEST",   [FRAME_REPLY] = "REPLY",
        [FRAME_ERROR] = "ERROR",       [FRAME_CANCEL] = "CANCEL",
        [FRAME_REGISTER] = "REGISTER", [FRAME_REGISTERED] = "REGISTERED",
        [FRAME_PING] = "PING",         [FRAME_DRAIN] = "DRAIN",
    };

    if (type == 0 || type > FRAME_TYPE_MAX) {
        return "UNKNOWN";
    }
    return names[type];
}
