/* SPDX-License-Identifier: MIT */
/*
 * worker.c - libferry's worker: registers services with ferryd, runs a
 * handler for each REQUEST ferryd forwards and sends back the REPLY or
 * ERROR the program gives, now or later.
 *
 * One connection carries many requests: every whole frame read in a turn
 * is handled, and every answer given in that turn leaves in one send at its
 * end. Jobs come from a pool. A job remembers the connection it came on, so
 * an answer for a request from a connection that has since dropped (ferryd
 * already failed it with WORKER_LOST) or that ferryd cancelled is dropped
 * quietly. The worker pings when it has sent nothing for its heartbeat
 * interval and gives ferryd up for dead after three of ferryd's intervals
 * of silence, then reconnects with backoff and registers again.
 */
#include "lib/worker.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_JOB_SLAB 64 /* job records allocated at once */

ferry_err
ferry_worker_new(const char *addr, const struct ferry_opts *opts,
                 struct ferry_worker **out)
{
    struct ferry_worker *w = calloc(1, sizeof(*w));
    ferry_err err;

    if (w == NULL) {
        return FERRY_ENOMEM;
    }
    err = ferry__conn_init(&w->conn, addr, opts, FRAME_ROLE_WORKER, true);
    if (err != FERRY_OK) {
        free(w);
        return err;
    }
    if (pipe2(w->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        ferry__conn_release(&w->conn);
        free(w);
        return FERRY_ESYS;
    }
    map_init(&w->jobs);
    pool_init(&w->jobs_pool, sizeof(struct ferry_job), WORKER_JOB_SLAB);
    w->held.prev = w->held.next = &w->held;
    *out = w;
    return FERRY_OK;
}

void
ferry_worker_free(struct ferry_worker *w)
{
    if (w == NULL) {
        return;
    }
    ferry__conn_release(&w->conn);
    /* Jobs still held by the program go with the pool. */
    pool_release(&w->jobs_pool);
    for (size_t i = 0; i < w->nservices; i++) {
        free(w->services[i]->name);
        free(w->services[i]);
    }
    free(w->services);
    map_release(&w->jobs);
    close(w->wake[0]);
    close(w->wake[1]);
    free(w);
}

/* ------------------------------------------------------------- jobs */

static struct ferry_job *
worker_find_job(const struct ferry_worker *w, uint64_t id)
{
    return map_get(&w->jobs, id);
}

/* Whether the job came on the connection that is open now. */
static bool
worker_job_is_current(const struct ferry_worker *w, const struct ferry_job *job)
{
    return ferry__conn_is_open(&w->conn) && job->epoch == w->conn.epoch;
}

/* Takes a job of the open connection out of the index by id; ferryd's ids
 * are unique on a connection (a duplicate is refused), so it is there. */
static void
worker_unindex_job(struct ferry_worker *w, struct ferry_job *job)
{
    void *was = map_del(&w->jobs, job->id);

    assert(was == job);
    (void)was;
}

/* Takes a job from the pool and makes it held on this connection; NULL
 * when out of memory. */
static struct ferry_job *
worker_job_get(struct ferry_worker *w, uint64_t id)
{
    struct ferry_job *job = pool_get(&w->jobs_pool);

    if (job == NULL) {
        return NULL;
    }
    memset(job, 0, sizeof(*job));
    if (map_put(&w->jobs, id, job) != FERRY_OK) {
        pool_put(&w->jobs_pool, job);
        return NULL;
    }
    job->w = w;
    job->id = id;
    job->epoch = w->conn.epoch;
    job->held = true;
    job->next = &w->held;
    job->prev = w->held.prev;
    w->held.prev->next = job;
    w->held.prev = job;
    w->nlive++;
    w->nheld++;
    return job;
}

/* Ends a held job and returns it to the pool. */
static void
worker_job_put(struct ferry_worker *w, struct ferry_job *job)
{
    if (worker_job_is_current(w, job)) {
        worker_unindex_job(w, job);
        if (!job->cancelled) {
            w->nlive--;
        }
    }
    job->prev->next = job->next;
    job->next->prev = job->prev;
    w->nheld--;
    job->held = false;
    job->svc = NULL;
    job->payload.p = job->key.p = NULL;
    job->payload.len = job->key.len = 0;
    pool_put(&w->jobs_pool, job);
}

/* Whether an answer to the job should go to ferryd. */
static bool
worker_job_wanted(const struct ferry_worker *w, const struct ferry_job *job)
{
    return worker_job_is_current(w, job) && !job->cancelled;
}

const void *
ferry_job_payload(const struct ferry_job *job, size_t *len)
{
    *len = job->payload.len;
    return job->payload.p;
}

const void *
ferry_job_key(const struct ferry_job *job, size_t *len)
{
    *len = job->key.len;
    return job->key.p;
}

uint64_t
ferry_job_id(const struct ferry_job *job)
{
    return job->id;
}

const char *
ferry_job_service(const struct ferry_job *job)
{
    return job->svc != NULL ? job->svc->name : "";
}

uint32_t
ferry_job_remaining_ms(const struct ferry_job *job)
{
    uint64_t now = ferry__now_ms();

    if (job->deadline_at == UINT64_MAX) {
        return UINT32_MAX;
    }
    if (job->deadline_at <= now) {
        return 0;
    }
    return job->deadline_at - now > UINT32_MAX
               ? UINT32_MAX
               : (uint32_t)(job->deadline_at - now);
}

ferry_err
ferry_job_reply(struct ferry_job *job, const void *data, size_t len)
{
    struct ferry_worker *w;
    ferry_err err = FERRY_OK;
    uint8_t *p;

    if (job == NULL || !job->held || (data == NULL && len > 0)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    w = job->w;
    if (worker_job_wanted(w, job)) {
        if (len > w->conn.peer_max_frame) {
            err = FERRY_ETOO_BIG;
            (void)ferry__conn_send_error(&w->conn, job->id, FERRY_EWORKER_ERROR,
                                         "reply larger than ferryd accepts");
        } else if ((p = buf_prepare(&w->conn.out, FRAME_HEADER_SIZE + len)) ==
                   NULL) {
            err = FERRY_ENOMEM;
            (void)ferry__conn_send_error(&w->conn, job->id, FERRY_ENOMEM,
                                         "worker out of memory");
        } else {
            p += frame_write_reply_header(p, job->id, (uint32_t)len);
            if (len > 0) {
                memcpy(p, data, len);
            }
            buf_commit(&w->conn.out, FRAME_HEADER_SIZE + len);
        }
    }
    worker_job_put(w, job);
    return err;
}

ferry_err
ferry_job_fail(struct ferry_job *job, ferry_err code, const char *message)
{
    struct ferry_worker *w;
    ferry_err err = FERRY_OK;

    if (job == NULL || !job->held) {
        return FERRY_EINVALID_ARGUMENT;
    }
    w = job->w;
    if (code <= FERRY_OK || code > UINT16_MAX) {
        code = FERRY_EWORKER_ERROR;
    }
    if (worker_job_wanted(w, job)) {
        err =
            ferry__conn_send_error(&w->conn, job->id, (uint16_t)code, message);
    }
    worker_job_put(w, job);
    return err;
}

/* ------------------------------------------------------- services */

static struct ferry__service *
worker_find_service(const struct ferry_worker *w, struct slice name)
{
    for (size_t i = 0; i < w->nservices; i++) {
        struct ferry__service *s = w->services[i];
        if (s->name_len == name.len && memcmp(s->name, name.p, name.len) == 0) {
            return s;
        }
    }
    return NULL;
}

/* Appends REGISTER for the service at index i (its id is i + 1). */
static ferry_err
worker_send_register(struct ferry_worker *w, size_t i)
{
    struct ferry__service *s = w->services[i];
    struct slice name = {(const uint8_t *)s->name, s->name_len};
    uint8_t *p = buf_prepare(&w->conn.out, frame_register_size(name.len));

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    buf_commit(&w->conn.out,
               frame_write_register(p, (uint64_t)i + 1, s->credit, name));
    return FERRY_OK;
}

ferry_err
ferry_worker_register(struct ferry_worker *w, const char *service,
                      uint32_t credit, ferry_handler_cb handler, void *arg)
{
    struct ferry__service *s, **grown;
    size_t n;

    if (service == NULL || handler == NULL || credit == 0 ||
        credit > FRAME_MAX_CREDIT) {
        return FERRY_EINVALID_ARGUMENT;
    }
    n = strlen(service);
    if (n == 0 || n > FRAME_MAX_NAME) {
        return FERRY_EINVALID_ARGUMENT;
    }
    s = worker_find_service(w, (struct slice){(const uint8_t *)service, n});
    if (s == NULL) {
        grown = realloc(w->services, (w->nservices + 1) * sizeof(*grown));
        if (grown == NULL) {
            return FERRY_ENOMEM;
        }
        w->services = grown;
        s = calloc(1, sizeof(*s));
        if (s == NULL || (s->name = strdup(service)) == NULL) {
            free(s);
            return FERRY_ENOMEM;
        }
        s->name_len = n;
        w->services[w->nservices++] = s;
    } else if (s->registered) {
        s->registered = false;
        w->nregistered--;
    }
    s->credit = credit;
    s->handler = handler;
    s->arg = arg;
    if (ferry__conn_is_open(&w->conn)) {
        /* Registering again changes the credit on the live connection. */
        for (size_t i = 0; i < w->nservices; i++) {
            if (w->services[i] == s) {
                return worker_send_register(w, i);
            }
        }
    }
    return FERRY_OK;
}

bool
ferry_worker_is_ready(const struct ferry_worker *w)
{
    return ferry__conn_is_open(&w->conn) && w->nservices > 0 &&
           w->nregistered == w->nservices;
}

/* ------------------------------------------------------ connection */

/* The connection is gone: its jobs stay held by the program but their
 * answers will be dropped. */
static void
worker_lose(struct ferry_worker *w)
{
    ferry__conn_close(&w->conn, NULL);
    map_clear(&w->jobs);
    w->nlive = 0;
    w->nregistered = 0;
    for (size_t i = 0; i < w->nservices; i++) {
        w->services[i]->registered = false;
    }
}

/* Connects, says HELLO and registers every service. */
static ferry_err
worker_connect(struct ferry_worker *w)
{
    ferry_err err = ferry__conn_open(&w->conn, w->wake[0]);

    if (err != FERRY_OK) {
        return err;
    }
    w->nregistered = 0;
    w->nlive = 0;
    w->ready_seen = false;
    w->drain_sent = false;
    map_clear(&w->jobs);
    for (size_t i = 0; i < w->nservices; i++) {
        w->services[i]->registered = false;
        if (worker_send_register(w, i) != FERRY_OK) {
            ferry__conn_close(&w->conn, "out of memory registering");
            return FERRY_ENOMEM;
        }
    }
    return FERRY_OK;
}

static void
worker_on_request(struct ferry_worker *w, const struct frame *f)
{
    struct frame_request q;
    struct ferry__service *s;
    struct ferry_job *job;

    if (frame_parse_request(f, &q) != FERRY_OK) {
        ferry__conn_abort(&w->conn, FERRY_EPROTO, "malformed REQUEST");
        worker_lose(w);
        return;
    }
    s = worker_find_service(w, q.service);
    if (s == NULL) {
        (void)ferry__conn_send_error(&w->conn, f->id, FERRY_EUNKNOWN_SERVICE,
                                     "service not served by this worker");
        return;
    }
    if (worker_find_job(w, f->id) != NULL) {
        (void)ferry__conn_send_error(&w->conn, f->id, FERRY_EDUPLICATE_ID,
                                     "request id already held");
        return;
    }
    job = worker_job_get(w, f->id);
    if (job == NULL) {
        (void)ferry__conn_send_error(&w->conn, f->id, FERRY_ENOMEM,
                                     "worker out of memory");
        return;
    }
    job->svc = s;
    job->payload = q.payload;
    job->key = q.key;
    job->deadline_at =
        q.deadline_ms ? ferry__now_ms() + q.deadline_ms : UINT64_MAX;
    s->handler(job, s->arg);
    /* Nothing reuses the job before the handler returns, so held still
     * tells whether it is unanswered. */
    if (job->held) {
        job->payload.p = job->key.p = NULL;
        job->payload.len = job->key.len = 0;
    }
}

static void
worker_on_registered(struct ferry_worker *w, const struct frame *f)
{
    struct ferry__service *s;

    if (f->id == 0 || f->id > w->nservices) {
        return;
    }
    s = w->services[f->id - 1];
    if (!s->registered) {
        s->registered = true;
        w->nregistered++;
    }
    if (w->nregistered == w->nservices && !w->ready_seen) {
        w->ready_seen = true;
        if (w->ready != NULL) {
            w->ready(w, w->ready_arg);
        }
    }
}

static void
worker_on_error(struct ferry_worker *w, const struct frame *f)
{
    struct frame_error e;

    if (frame_parse_error(f, &e) != FERRY_OK) {
        ferry__conn_abort(&w->conn, FERRY_EPROTO, "malformed ERROR");
        worker_lose(w);
        return;
    }
    if (f->id == 0) {
        ferry__conn_close(&w->conn,
                          "ferryd at '%s' closed the connection: "
                          "%s: %.*s",
                          w->conn.addr.text, ferry_errname((ferry_err)e.code),
                          (int)e.msg.len, (const char *)e.msg.p);
        worker_lose(w);
        return;
    }
    if (f->id <= w->nservices && !w->services[f->id - 1]->registered) {
        /* A refused registration: serving as asked is impossible. */
        ferry__conn_close(&w->conn, "ferryd refused service '%s': %s: %.*s",
                          w->services[f->id - 1]->name,
                          ferry_errname((ferry_err)e.code), (int)e.msg.len,
                          (const char *)e.msg.p);
        worker_lose(w);
        w->fatal = e.code != 0 ? (ferry_err)e.code : FERRY_EPROTO;
    }
}

static void
worker_on_frame(struct ferry_worker *w, const struct frame *f)
{
    struct ferry_job *job;
    char why[64];

    switch (f->type) {
    case FRAME_REQUEST:
        worker_on_request(w, f);
        return;
    case FRAME_CANCEL:
        job = worker_find_job(w, f->id);
        if (job != NULL && !job->cancelled) {
            job->cancelled = true;
            w->nlive--;
            if (w->on_cancel != NULL) {
                /* It may answer (and so release) the job. */
                w->on_cancel(job, w->on_cancel_arg);
            }
        }
        return;
    case FRAME_REGISTERED:
        worker_on_registered(w, f);
        return;
    case FRAME_ERROR:
        worker_on_error(w, f);
        return;
    case FRAME_PING:
        return;
    default:
        snprintf(why, sizeof(why), "unexpected %s frame for a worker",
                 frame_type_name(f->type));
        ferry__conn_abort(&w->conn, FERRY_EPROTO, why);
        worker_lose(w);
        return;
    }
}

static void
worker_frame_cb(void *arg, const struct frame *f)
{
    worker_on_frame(arg, f);
}

/* Handles every whole frame in the input buffer. */
static void
worker_process(struct ferry_worker *w)
{
    if (!ferry__conn_process(&w->conn, worker_frame_cb, w)) {
        worker_lose(w);
    }
}

static void
worker_drain_wake(struct ferry_worker *w)
{
    char tmp[64];

    while (read(w->wake[0], tmp, sizeof(tmp)) > 0) {
    }
}

/* Pings when we owe one and gives up a silent ferryd. */
static void
worker_heartbeat(struct ferry_worker *w)
{
    if (!ferry__conn_keepalive(&w->conn)) {
        worker_lose(w);
    }
}

/* Waits while disconnected: until the backoff allows a new attempt, the
 * timeout ends or ferry_worker_stop() is called. */
static void
worker_wait_backoff(struct ferry_worker *w, int timeout_ms)
{
    uint64_t now = ferry__now_ms(), left;
    bool readable, woken;
    int t = timeout_ms;

    left = w->conn.retry_at_ms > now ? w->conn.retry_at_ms - now : 0;
    if (t < 0 || (uint64_t)t > left) {
        t = ferry__ms_to_timeout(left);
    }
    (void)ferry__conn_wait(&w->conn, w->wake[0], t, &readable, &woken);
    if (woken) {
        worker_drain_wake(w);
    }
}

ferry_err
ferry_worker_poll(struct ferry_worker *w, int timeout_ms)
{
    bool readable = false, woken = false;
    ferry_err err;

    if (w->nservices == 0) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if (!ferry__conn_is_open(&w->conn)) {
        if (w->stop) {
            return FERRY_OK;
        }
        if (!ferry__conn_may_connect(&w->conn, ferry__now_ms())) {
            worker_wait_backoff(w, timeout_ms);
            return FERRY_OK;
        }
        err = worker_connect(w);
        if (err == FERRY_EVERSION || err == FERRY_EUNAUTHORIZED) {
            return err;
        }
        if (err != FERRY_OK) {
            return FERRY_OK; /* the backoff says when to try again */
        }
    }
    if (w->stop && !w->drain_sent) {
        w->drain_sent = true;
        (void)ferry__conn_send_empty(&w->conn, FRAME_DRAIN, 0);
    }
    if (ferry__conn_flush(&w->conn) != FERRY_OK) {
        worker_lose(w);
        return FERRY_OK;
    }
    if (ferry__conn_wait(&w->conn, w->wake[0],
                         ferry__conn_timeout(&w->conn, timeout_ms), &readable,
                         &woken) != FERRY_OK) {
        ferry__conn_close(&w->conn, "poll: %s", strerror(w->conn.sys_err));
        worker_lose(w);
        return FERRY_OK;
    }
    if (woken) {
        worker_drain_wake(w);
    }
    if (readable) {
        err = ferry__conn_read(&w->conn);
        worker_process(w);
        if (err != FERRY_OK) {
            worker_lose(w);
        }
    }
    if (w->fatal != FERRY_OK) {
        err = w->fatal;
        w->fatal = FERRY_OK;
        return err;
    }
    worker_heartbeat(w);
    if (w->stop && !w->drain_sent && ferry__conn_is_open(&w->conn)) {
        w->drain_sent = true;
        (void)ferry__conn_send_empty(&w->conn, FRAME_DRAIN, 0);
    }
    if (ferry__conn_flush(&w->conn) != FERRY_OK) {
        worker_lose(w);
    }
    return FERRY_OK;
}

/* After a stop: lets ferryd know, answers what can still be answered for
 * up to FERRY__DRAIN_MS, then closes. */
static void
worker_drain(struct ferry_worker *w)
{
    uint64_t end = ferry__now_ms() + FERRY__DRAIN_MS, now;

    while (ferry__conn_is_open(&w->conn) &&
           (w->nlive > 0 || buf_len(&w->conn.out) > 0 || !w->drain_sent)) {
        now = ferry__now_ms();
        if (now >= end) {
            break;
        }
        if (ferry_worker_poll(w, ferry__ms_to_timeout(end - now)) != FERRY_OK) {
            break;
        }
    }
    ferry__conn_close(&w->conn, "worker stopped");
    worker_lose(w);
}

ferry_err
ferry_worker_run(struct ferry_worker *w,
                 void (*ready)(struct ferry_worker *w, void *arg), void *arg)
{
    ferry_err err = FERRY_OK;

    if (w->nservices == 0) {
        return FERRY_EINVALID_ARGUMENT;
    }
    w->ready = ready;
    w->ready_arg = arg;
    while (!w->stop) {
        err = ferry_worker_poll(w, -1);
        if (err != FERRY_OK) {
            break;
        }
    }
    if (w->stop) {
        worker_drain(w);
        err = FERRY_OK;
    } else {
        ferry__conn_close(&w->conn, NULL);
        worker_lose(w);
    }
    w->ready = NULL;
    w->ready_arg = NULL;
    w->stop = 0;
    worker_drain_wake(w);
    return err;
}

void
ferry_worker_on_cancel(struct ferry_worker *w, ferry_cancel_cb cb, void *arg)
{
    w->on_cancel = cb;
    w->on_cancel_arg = arg;
}

int
ferry_worker_fd(const struct ferry_worker *w)
{
    return w->conn.fd;
}

const char *
ferry_worker_errmsg(const struct ferry_worker *w)
{
    return w->conn.errmsg;
}

void
ferry_worker_stop(struct ferry_worker *w)
{
    int saved = errno;
    ssize_t r;

    w->stop = 1;
    r = write(w->wake[1], "", 1);
    (void)r;
    errno = saved;
}
