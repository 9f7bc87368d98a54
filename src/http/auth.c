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

bool
auth_is_allowed(h2o_req_t *req, const char *token, const char *admin_token)
{
    static const char bearer[] = "bearer ";
    size_t blen = sizeof(bearer) - 1;
    bool ok = false;
    ssize_t i;

    if (!config_token_is_set(token)) {
        return true;
    }
    i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len >= blen && h2o_lcstris(v.base, blen, bearer, blen)) {
            v.base += blen;
            v.len -= blen;
            ok |= auth_matches(v, token);
            ok |= auth_matches(v, admin_token);
        }
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("ferry-token"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        ok |= auth_matches(v, token);
        ok |= auth_matches(v, admin_token);
    }
    return ok;
}

void
auth_refuse(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE,
                   NULL, H2O_STRLIT("Bearer"));
    http_respond_error(req, FERRY_EUNAUTHORIZED, "missing or wrong token");
}
