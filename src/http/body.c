/* SPDX-License-Identifier: MIT */
/*
 * body.c - big answers in slices (see body.h).
 *
 * Each slice is a job of the server (server.h): rendered on a loop turn
 * after h2o took the one before, within the turn's budget shared by all
 * answers in progress. The state lives in the request's pool, with a dispose callback that
 * frees what it owns when h2o frees the pool: after the last slice was
 * written, or when the client went away. So there is one way out
 * whatever happens, and the slice h2o is writing stays valid until then.
 */
#include "http/body.h"

#include <string.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/respond.h"
#include "http/server.h"

/* One answer being sent; in the request's pool. */
struct http_body {
    h2o_generator_t gen;     /* first: h2o hands this back */
    struct http_server *s;   /* borrowed */
    h2o_req_t *req;          /* borrowed: valid until disposed */
    struct render r;         /* the document */
    struct buf slice;        /* owned: what h2o is writing */
    struct http_watch watch; /* the stall bound */
    struct http_job job;     /* renders the next slice */
    bool watched;            /* watch is on the server's list */
};

/* Renders the next slice and gives it to h2o (a job: on the loop turn
 * after h2o took the last one, within the turn's budget). */
static void
http_body_next(struct http_job *j)
{
    struct http_body *hb = container_of(j, struct http_body, job);
    bool done = false;
    h2o_iovec_t v;

    buf_clear(&hb->slice);
    if (render_step(&hb->r, &hb->slice, &done) != FERRY_OK) {
        /* The client sees a cut answer (no last chunk), not a wrong one. */
        h2o_send(hb->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    v = h2o_iovec_init(buf_head(&hb->slice), buf_len(&hb->slice));
    http_watch_sent(hb->s, &hb->watch);
    h2o_send(hb->req, &v, 1,
             done ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* h2o took the last slice: its buffer is ours again. */
static void
http_body_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct http_body *hb = (struct http_body *)gen;

    http_watch_taken(&hb->watch);
    http_server_job_queue(hb->s, &hb->job);
}

/* The client went away; the pool's dispose frees the rest. */
static void
http_body_stop(h2o_generator_t *gen, h2o_req_t *req)
{
}

/* h2o frees the request's pool. */
static void
http_body_dispose(void *p)
{
    struct http_body *hb = p;

    if (hb->watched) {
        http_server_unwatch(&hb->watch);
    }
    http_server_job_cancel(&hb->job);
    render_release(&hb->r);
    buf_release(&hb->slice);
}

int
http_body_send(struct http_server *s, h2o_req_t *req, enum render_doc doc)
{
    static h2o_generator_t head_only = {NULL, NULL};
    const char *ctype = render_content_type(doc);
    struct http_body *hb;

    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   ctype, strlen(ctype));
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_start_response(req, &head_only);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    hb = h2o_mem_alloc_shared(&req->pool, sizeof(*hb), http_body_dispose);
    memset(hb, 0, sizeof(*hb));
    hb->gen.proceed = http_body_proceed;
    hb->gen.stop = http_body_stop;
    hb->s = s;
    hb->req = req;
    render_init(&hb->r, http_server_loop(s)->broker, doc);
    buf_init(&hb->slice);
    http_server_watch(s, &hb->watch, req);
    hb->watched = true;
    hb->job.run = http_body_next;
    h2o_start_response(req, &hb->gen);
    http_server_job_queue(s, &hb->job);
    return 0;
}
