/* SPDX-License-Identifier: MIT */
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

#include "core/list.h"
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

struct route_table;

/* The REST routes (owned by the server). */
const struct route_table *http_server_routes(const struct http_server *s);

/* The largest request body accepted (http_max_body, or max_frame). */
size_t http_server_max_body(const struct http_server *s);

/*
 * Hot reload, after the loop's config has taken its new values: takes
 * routes (a table built from them; left empty) in place of the old ones
 * and applies http_max_body. A request being answered has copied what it
 * needed from its route already.
 */
void http_server_reload(struct http_server *s, struct route_table *routes);

/*
 * A request whose answer ferryd pushes in pieces (an SSE stream, a big
 * answer in slices): watched so that a client that takes nothing of a
 * piece for http_stall_timeout_ms loses its connection (h2o 2.2.5 has no
 * write timeout). Embedded in the answer's state; owned by it.
 */
struct http_watch {
    struct list node; /* on the server's watched list */
    h2o_req_t *req;   /* borrowed: valid while watched */
    uint64_t since;   /* loop ms a piece was handed to h2o, 0 if taken */
    bool stalled;     /* its connection was shut for it */
};

/* Starts watching req's answer (nothing sent yet). */
void http_server_watch(struct http_server *s, struct http_watch *w,
                       h2o_req_t *req);

/* Stops watching; before the answer's state goes away. */
void http_server_unwatch(struct http_watch *w);

/*
 * Counts len bytes of an answer to req, handed to h2o whole, as held by
 * req's connection until h2o frees the request: a client that does not
 * read (or, in HTTP/2, opens no window) keeps them, and the memory
 * budget's shedding must see who holds them.
 */
void http_server_note_output(h2o_req_t *req, size_t len);

/* A piece was handed to h2o (h2o_send), or h2o took it (proceed). */
void http_watch_sent(struct http_server *s, struct http_watch *w);
void http_watch_taken(struct http_watch *w);

/*
 * A request whose answer waits for an event rather than for work (a
 * reserve of ferry.queue held as a long poll). With HTTP/1.1 h2o reads
 * nothing from a connection while a request on it is being answered, so
 * it learns that the client left only when the answer is written: too
 * late for an answer that hands something over (a reserved job), which
 * goes down with the connection. The sockets of watched requests are
 * polled every HTTP_PEER_CHECK_MS for the client's end (EOF, reset); when
 * it has come, gone() runs once and the watch is off. HTTP/2 needs none:
 * h2o reads on and stops the stream's generator itself. Embedded in the
 * request's state, owned by it; unwatch before that state goes.
 */
struct http_peer_watch {
    struct list node;                        /* on the server's list */
    h2o_req_t *req;                          /* borrowed: while watched */
    void (*gone)(struct http_peer_watch *w); /* the client left */
};

#define HTTP_PEER_CHECK_MS 100 /* how often watched sockets are polled */

/* Starts watching req's client (an HTTP/1.x request). */
void http_server_watch_peer(struct http_server *s, struct http_peer_watch *w,
                            h2o_req_t *req,
                            void (*gone)(struct http_peer_watch *w));

/* Stops watching; harmless when not watched (w zeroed or gone already). */
void http_server_unwatch_peer(struct http_peer_watch *w);

/* Whether req's client has closed or reset its connection (its socket
 * polls as read-hung-up or in error); false when it cannot tell. */
bool http_server_is_peer_gone(h2o_req_t *req);

/*
 * A piece of work of the HTTP side run from the loop (a slice of a big
 * answer, of the next SSE event). Queued jobs run once per loop turn, in
 * order, until HTTP_TURN_BUDGET_US of them have run (at least one), so
 * however many big answers are in progress the loop turns every few
 * milliseconds. Embedded in its owner.
 */
struct http_job {
    struct list node;                 /* on the server's queue */
    void (*run)(struct http_job *j);  /* does the work; may queue again */
    bool queued;                      /* on the queue */
};

#define HTTP_TURN_BUDGET_US 3000 /* job time per loop turn */

/* Queues j to run on a coming loop turn (nothing if it is queued). */
void http_server_job_queue(struct http_server *s, struct http_job *j);

/* Takes j off the queue, if it is on it. */
void http_server_job_cancel(struct http_job *j);

/* Connections closed because their client stalled (http_watch). */
uint64_t http_server_n_stalled(const struct http_server *s);

/* SSE events skipped by clients too slow for one a second. */
uint64_t http_server_n_sse_dropped(const struct http_server *s);
void http_server_count_sse_dropped(struct http_server *s, uint64_t n);

/* HTTP connections closed at accept (http_max_connections, stopping). */
uint64_t http_server_n_refused(const struct http_server *s);

/* HTTP connections open now. */
size_t http_server_n_conns(const struct http_server *s);

/*
 * Creates the server for l from l->cfg with the REST routes built from it
 * (taken; left empty), registers every handler (gateway, routes, admin,
 * dashboard) and binds cfg->http. A bind failure is logged and returned
 * (FERRY_ESYS). Sets l->http.
 */
ferry_err http_server_new(struct loop *l, struct route_table *routes,
                          struct http_server **out);

/* Stops accepting new HTTP connections (SIGTERM); requests in flight
 * finish, open connections may still ask (and get SHUTTING_DOWN). */
void http_server_stop_accepting(struct http_server *s);

/*
 * The broker has answered everything: asks every HTTP connection to close
 * (h2o's graceful shutdown) and runs the shutdown hooks. When the last
 * one is gone, and the loop has no connection left either, loop->on_empty
 * runs. Connections still open after a second (clients that do not read)
 * get http_server_abort(); any left a second after that stop the loop.
 */
void http_server_shutdown(struct http_server *s);

/*
 * Registers cb(arg) to run when the HTTP side shuts down (after the broker
 * has answered everything): a part that keeps answers open (the SSE
 * streams) ends them there. At most four. Call before the loop runs.
 */
void http_server_on_shutdown(struct http_server *s, void (*cb)(void *arg),
                             void *arg);

/*
 * Shuts down (shutdown(2), both ways) the socket of every open HTTP
 * connection, so that h2o's next write fails or its next read sees EOF
 * and it closes the connection itself. Returns how many it shut.
 */
size_t http_server_abort(struct http_server *s);

/*
 * Stopping at once (a second signal, or connections left after the
 * shutdown's bounds): http_server_abort(), then runs the loop a few turns
 * without blocking so h2o closes what it can before loop_release() closes
 * the rest under it.
 */
void http_server_drop_all(struct http_server *s);

/* From loop->on_empty: closes the server's own handles (h2o's context). */
void http_server_close(struct http_server *s);

/* Frees the server after the loop has run its handles closed. */
void http_server_free(struct http_server *s);

#endif
