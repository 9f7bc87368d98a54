/* SPDX-License-Identifier: MIT */
/*
 * respond.c - how ferryd's HTTP handlers answer: a whole body with its
 * length, or a JSON error whose status follows the ferry error code. The
 * gateway, the admin endpoints and the dashboard all answer through here,
 * so one error looks the same on every path.
 */
#include "http/respond.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int
http_status_of(ferry_err code)
{
    switch (code) {
    case FERRY_OK:
        return 200;
    case FERRY_EINVALID_ARGUMENT:
        return 400;
    case FERRY_EUNAUTHORIZED:
        return 401;
    case FERRY_EUNKNOWN_SERVICE:
        return 404;
    case FERRY_ETOO_BIG:
        return 413;
    case FERRY_EOVERLOADED:
    case FERRY_ENO_WORKER:
    case FERRY_ESHUTTING_DOWN:
    case FERRY_ECIRCUIT_OPEN:
    case FERRY_ESERVICE_DISABLED:
    case FERRY_ENOT_MY_VBUCKET:
    case FERRY_EFENCED:
    case FERRY_EUNAVAILABLE:
        return 503;
    case FERRY_EWORKER_LOST:
    case FERRY_EWORKER_ERROR:
        return 502;
    case FERRY_EDEADLINE:
        return 504;
    default:
        return 500;
    }
}

static const char *
reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

void
http_respond(h2o_req_t *req, int status, const char *content_type,
             const void *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);

    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    if (content_type != NULL) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                       NULL, content_type, strlen(content_type));
    }
    /* A deferred answer may have started already (HTTP/2 gateway). */
    if (req->_generator == NULL) {
        h2o_start_response(req, &generator);
    }
    if (h2o_memis(req->input.method.base, req->input.method.len,
                  H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    }
}

void
http_respond_json(h2o_req_t *req, int status, const char *json, size_t len)
{
    http_respond(req, status, "application/json", json, len);
}

/* Bytes of a valid UTF-8 sequence starting at s, or 0 when it is not. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t want;
    uint32_t cp;

    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        want = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        want = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        want = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < want) {
        return 0;
    }
    for (size_t i = 1; i < want; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((want == 2 && cp < 0x80) || (want == 3 && cp < 0x800) ||
        (want == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return want;
}

bool
http_is_utf8(const void *src, size_t len)
{
    const unsigned char *s = src;
    size_t i = 0, n;

    while (i < len) {
        /* ASCII, eight bytes at a time: most payloads are all of it. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & UINT64_C(0x8080808080808080)) != 0) {
                break;
            }
            i += 8;
        }
        if (i == len) {
            break;
        }
        n = utf8_len(s + i, len - i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

size_t
http_json_escape(char *dst, const void *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = src;
    char *d = dst;
    size_t i = 0;

    *d++ = '"';
    while (i < len) {
        unsigned char c = s[i];
        size_t n;

        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char)c;
            i++;
        } else if (c < 0x20) {
            *d++ = '\\';
            switch (c) {
            case '\n':
                *d++ = 'n';
                break;
            case '\r':
                *d++ = 'r';
                break;
            case '\t':
                *d++ = 't';
                break;
            default:
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 15];
            }
            i++;
        } else if ((n = utf8_len(s + i, len - i)) > 0) {
            memcpy(d, s + i, n);
            d += n;
            i += n;
        } else {
            /* Invalid UTF-8 becomes U+FFFD so the JSON stays valid. */
            memcpy(d, "\\ufffd", 6);
            d += 6;
            i++;
        }
    }
    *d++ = '"';
    return (size_t)(d - dst);
}

static void
respond_error_json(h2o_req_t *req, int status, const char *name, int code,
                   const char *message)
{
    size_t mlen = strlen(message);
    size_t cap = 64 + strlen(name) + HTTP_JSON_ESCAPED_MAX(mlen);
    char *json = h2o_mem_alloc_pool(&req->pool, cap);
    int n = snprintf(json, cap,
                     "{\"error\":\"%s\",\"code\":%d,\"message\":", name, code);
    size_t len = (size_t)n;

    len += http_json_escape(json + len, message, mlen);
    json[len++] = '}';
    if (status == 503) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL, H2O_STRLIT("1"));
    }
    if (status == 401) {
        /* RFC 7235: a 401 names its scheme, on every path alike. */
        h2o_add_header(&req->pool, &req->res.headers,
                       H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
    }
    http_respond_json(req, status, json, len);
}

void
http_respond_error(h2o_req_t *req, ferry_err code, const char *message)
{
    if (message == NULL || message[0] == '\0') {
        message = ferry_strerror(code);
    }
    respond_error_json(req, http_status_of(code), ferry_errname(code),
                       (int)code, message);
}

void
http_respond_status(h2o_req_t *req, int status, const char *name,
                    const char *message)
{
    respond_error_json(req, status, name, 0, message);
}
