/* SPDX-License-Identifier: MIT */
/*
 * auth.c - the access-token check of HTTP requests.
 *
 * A request names its token in "Authorization: Bearer <token>" or, for
 * clients that keep Authorization for something else, "Ferry-Token:
 * <token>". Each configured token is compared with every header given, in
 * constant time, so the answer's timing does not tell which was close.
 */
#include "http/auth.h"

#include <string.h>

#include "core/access.h"
#include "core/config.h"
#include "core/ctcompare.h"
#include "http/respond.h"

/* Whether value (a header's value) is token. */
static bool
auth_matches(h2o_iovec_t value, const char *token)
{
    return config_token_is_set(token) &&
           ctcompare_equal(value.base, value.len, token, strlen(token));
}

/* The tokens req carries: the Bearer one of Authorization, then
 * Ferry-Token. Returns how many (0 to 2) it wrote to out. */
static size_t
auth_tokens(h2o_req_t *req, h2o_iovec_t out[2])
{
    static const char bearer[] = "bearer ";
    size_t blen = sizeof(bearer) - 1, n = 0;
    ssize_t i;

    i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len >= blen && h2o_lcstris(v.base, blen, bearer, blen)) {
            out[n++] = h2o_iovec_init(v.base + blen, v.len - blen);
        }
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("ferry-token"), -1);
    if (i >= 0) {
        out[n++] = req->headers.entries[i].value;
    }
    return n;
}

bool
auth_is_allowed(h2o_req_t *req, const char *token, const char *admin_token)
{
    h2o_iovec_t given[2];
    size_t n;
    bool ok = false;

    if (!config_token_is_set(token)) {
        return true;
    }
    n = auth_tokens(req, given);
    for (size_t i = 0; i < n; i++) {
        ok |= auth_matches(given[i], token);
        ok |= auth_matches(given[i], admin_token);
    }
    return ok;
}

bool
auth_may_see_internals(h2o_req_t *req, const struct config *cfg)
{
    h2o_iovec_t given[2];
    size_t n = auth_tokens(req, given);
    bool ok = false;

    if (n == 0) {
        return access_may_see_internals(cfg, "", 0);
    }
    for (size_t i = 0; i < n; i++) {
        ok |= access_may_see_internals(cfg, given[i].base, given[i].len);
    }
    return ok;
}

void
auth_refuse(h2o_req_t *req)
{
    /* A 401 carries WWW-Authenticate: Bearer (respond.c). */
    http_respond_error(req, FERRY_EUNAUTHORIZED, "missing or wrong token");
}
