/*
 * server.h - ferryd's HTTP side: h2o on the loop's own libuv loop, one
 * host, handlers registered by path prefix. The gateway (gateway.c), the
 * admin endpoints (admin.c) and the dashboard (dashboard.c) register
 * their paths here; the server owns the listeners, the connection count
 * and the limits from the config. One struct http_server per loop, reached
 * as loop->http.
 */
#ifndef FERRY_HTTP_SERVER_H
#define FERRY_HTTP_SERVER_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>

#include "ferry.h"

struct loop;
struct http_server;

/* An h2o on_req callback: return 0 when the request is (or will be)
 * answered, -1 to pass it to the next handler. */
typedef int (*http_handler_cb)(h2o_handler_t *self, h2o_req_t *req);

/*
 * Registers cb for every request whose path starts with path (h2o's
 * prefix match: "/v1/stats" also gets "/v1/stats/stream"; register the
 * longer path first when both need their own handler). handler_size is at
 * least sizeof(h2o_handler_t); a handler struct that embeds h2o_handler_t
 * first may carry its own fields. Call only before http_server_start().
 */
h2o_handler_t *http_server_add_path(struct http_server *s, const char *path,
                                    http_handler_cb cb, size_t handler_size);

/* The loop this server runs on (for handlers that need the broker). */
struct loop *http_server_loop(const struct http_server *s);

/*
 * Creates the server for l from l->cfg, registers every handler (gateway,
 * routes, admin, dashboard) and binds cfg->http. A bind failure is
 * FERRY_ESYS, logged. Sets l->http.
 */
ferry_err http_server_new(struct loop *l, struct http_server **out);

/* Stops accepting new HTTP connections (SIGTERM); requests in flight
 * finish. */
void http_server_stop_accepting(struct http_server *s);

/* Closes every HTTP connection and frees the server; runs nothing of the
 * loop itself, the caller runs the loop afterwards to let handles close. */
void http_server_free(struct http_server *s);

#endif
