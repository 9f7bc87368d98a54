/* SPDX-License-Identifier: MIT */
/*
 * fuzz_auth.c - libFuzzer target for the HTTP side's reading of access
 * tokens (http/auth.c): any bytes as the values of an Authorization and a
 * Ferry-Token header, checked against an oracle written here from
 * docs/http.md: a request is allowed when a token setting is off, or when
 * "Bearer " (any case) plus the token, or Ferry-Token, is exactly the
 * caller token or the admin token; internals follow core/access.h.
 *
 * Input: byte 0 picks the settings (bit 0 caller_token, bit 1
 * admin_token) and which headers are sent (bit 2 Authorization, bit 3
 * Ferry-Token); the rest is split at the first 0xff byte into the two
 * header values.
 *
 * FUZZ_SRC: src/http/auth.c src/http/respond.c src/core/access.c
 * FUZZ_SRC: src/core/ctcompare.c src/proto/errors.c
 * FUZZ_LIBS: -lh2o -luv -ljansson
 */
#include <h2o.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "http/auth.h"

#define CALLER "caller-s3cret"
#define ADMIN "admin-s3cret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
is(const uint8_t *p, size_t n, const char *token)
{
    return token != NULL && n == strlen(token) && memcmp(p, token, n) == 0;
}

/* The value of Authorization as a bearer token, if it is one. */
static int
bearer(const uint8_t *p, size_t n, const uint8_t **tok, size_t *len)
{
    if (n < 7 || strncasecmp((const char *)p, "bearer ", 7) != 0) {
        return 0;
    }
    *tok = p + 7;
    *len = n - 7;
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    h2o_req_t req;
    const uint8_t *a, *f, *cut, *bt = NULL;
    size_t alen, flen, btlen = 0;
    int send_a, send_f, has_bearer, want_call, want_internals;
    uint8_t sel;

    if (size < 1) {
        return 0;
    }
    sel = data[0];
    a = data + 1;
    cut = memchr(a, 0xff, size - 1);
    alen = cut ? (size_t)(cut - a) : size - 1;
    f = cut ? cut + 1 : a + alen;
    flen = (size_t)(data + size - f);
    send_a = (sel & 4) != 0;
    send_f = (sel & 8) != 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.caller_token = (sel & 1) ? CALLER : NULL;
    cfg.admin_token = (sel & 2) ? ADMIN : NULL;

    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    if (send_a) {
        h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_AUTHORIZATION, NULL,
                       (const char *)a, alen);
    }
    if (send_f) {
        h2o_add_header_by_str(&req.pool, &req.headers,
                              H2O_STRLIT("ferry-token"), 0, NULL,
                              (const char *)f, flen);
    }

    has_bearer = send_a && bearer(a, alen, &bt, &btlen);
    /* A call: the caller token, or the admin token, in either header. */
    want_call =
        cfg.caller_token == NULL ||
        (has_bearer &&
         (is(bt, btlen, CALLER) || is(bt, btlen, cfg.admin_token))) ||
        (send_f && (is(f, flen, CALLER) || is(f, flen, cfg.admin_token)));
    if (auth_is_allowed(&req, cfg.caller_token, cfg.admin_token) !=
        (want_call != 0)) {
        abort();
    }
    /* Internals: the admin token when set, else what a call needs. */
    if (cfg.admin_token != NULL) {
        want_internals = (has_bearer && is(bt, btlen, ADMIN)) ||
                         (send_f && is(f, flen, ADMIN));
    } else if (cfg.caller_token != NULL) {
        want_internals = (has_bearer && is(bt, btlen, CALLER)) ||
                         (send_f && is(f, flen, CALLER));
    } else {
        want_internals = 1;
    }
    if (auth_may_see_internals(&req, &cfg) != (want_internals != 0)) {
        abort();
    }
    h2o_mem_clear_pool(&req.pool);
    return 0;
}
