/* SPDX-License-Identifier: MIT */
/*
 * dashboard.c - the dashboard page and its assets on ferryd's HTTP port:
 * GET / is the page, GET /assets/<name> the bundle it loads. Nothing is
 * read from disk: the files were built from web/ and embedded at build
 * time (dashboard_assets.h), so the page works offline and always matches
 * the binary. The page itself reads /v1/stats/stream and /v1/services.
 *
 * Caching: the page is revalidated on every load (ETag, 304), and it
 * names each asset with ?v=<hash of its content>, so the assets can be
 * cached for good.
 */
#include "http/dashboard.h"

#include <string.h>

#include "http/dashboard_assets.h"
#include "http/respond.h"

#define DASHBOARD_PAGE "index.html"
#define ASSETS_PREFIX "/assets/"

static const char page_cache[] = "no-cache";
static const char asset_cache[] = "public, max-age=31536000, immutable";
/* The page loads only its own assets and talks only to its own origin. */
static const char page_csp[] =
    "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/* The embedded file called name (len bytes, not terminated), or NULL. */
static const struct dashboard_asset *
dashboard_find(const char *name, size_t len)
{
    for (size_t i = 0; i < dashboard_assets_count; i++) {
        const struct dashboard_asset *a = &dashboard_assets[i];

        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) {
            return a;
        }
    }
    return NULL;
}

static bool
dashboard_is_get(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

/* Whether the client's If-None-Match names etag (or is "*"). */
static bool
dashboard_is_fresh(h2o_req_t *req, const char *etag)
{
    size_t elen = strlen(etag);
    ssize_t i = -1;

    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, i)) !=
           -1) {
        h2o_iovec_t v = req->headers.entries[i].value;

        if (h2o_memis(v.base, v.len, H2O_STRLIT("*")) ||
            h2o_strstr(v.base, v.len, etag, elen) != SIZE_MAX) {
            return true;
        }
    }
    return false;
}

/* Answers with a, or 304 when the client already holds this version. */
static void
dashboard_send(h2o_req_t *req, const struct dashboard_asset *a,
               const char *cache_control)
{
    h2o_mem_pool_t *pool = &req->pool;
    h2o_headers_t *h = &req->res.headers;

    h2o_add_header(pool, h, H2O_TOKEN_CACHE_CONTROL, NULL, cache_control,
                   strlen(cache_control));
    h2o_add_header(pool, h, H2O_TOKEN_ETAG, NULL, a->etag, strlen(a->etag));
    h2o_add_header_by_str(pool, h, H2O_STRLIT("x-content-type-options"), 0,
                          NULL, H2O_STRLIT("nosniff"));
    if (strcmp(a->name, DASHBOARD_PAGE) == 0) {
        h2o_add_header_by_str(pool, h, H2O_STRLIT("content-security-policy"), 0,
                              NULL, page_csp, sizeof(page_csp) - 1);
    }
    if (dashboard_is_fresh(req, a->etag)) {
        http_respond(req, 304, NULL, "", 0);
        return;
    }
    http_server_note_output(req, a->len);
    http_respond(req, 200, a->content_type, a->data, a->len);
}

static int
dashboard_method_not_allowed(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                   H2O_STRLIT("GET, HEAD"));
    http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                        "the dashboard answers GET and HEAD only");
    return 0;
}

/* GET / (and /index.html). "/" is a prefix of every path, so anything
 * else goes on to the next handler. */
static int
dashboard_on_page(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    const struct dashboard_asset *a;

    if (!h2o_memis(p.base, p.len, H2O_STRLIT("/")) &&
        !h2o_memis(p.base, p.len, H2O_STRLIT("/" DASHBOARD_PAGE))) {
        return -1;
    }
    if (!dashboard_is_get(req)) {
        return dashboard_method_not_allowed(req);
    }
    a = dashboard_find(DASHBOARD_PAGE, strlen(DASHBOARD_PAGE));
    if (a == NULL) {
        http_respond_status(req, 404, "NOT_FOUND",
                            "this ferryd was built without the dashboard");
        return 0;
    }
    dashboard_send(req, a, page_cache);
    return 0;
}

/* GET /assets/<name>: an embedded file other than the page, else 404. */
static int
dashboard_on_asset(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    size_t plen = sizeof(ASSETS_PREFIX) - 1;
    const struct dashboard_asset *a = NULL;

    if (!dashboard_is_get(req)) {
        return dashboard_method_not_allowed(req);
    }
    if (p.len > plen && memcmp(p.base, ASSETS_PREFIX, plen) == 0) {
        a = dashboard_find(p.base + plen, p.len - plen);
    }
    if (a == NULL || strcmp(a->name, DASHBOARD_PAGE) == 0) {
        http_respond_status(req, 404, "NOT_FOUND", "no such asset");
        return 0;
    }
    dashboard_send(req, a, asset_cache);
    return 0;
}

void
dashboard_register(struct http_server *s)
{
    /* The longer path first: h2o takes the first prefix that matches. */
    http_server_add_path(s, "/assets", dashboard_on_asset,
                         sizeof(h2o_handler_t));
    http_server_add_path(s, "/", dashboard_on_page, sizeof(h2o_handler_t));
}
