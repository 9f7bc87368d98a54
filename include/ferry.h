/* SPDX-License-Identifier: MIT */
/*
 * ferry.h - the public API of libferry, the C client and worker library of
 * the ferry RPC engine, and the one list of ferry's error codes.
 *
 * A caller connects to ferryd, names a service and gets a reply; a worker
 * connects to ferryd, registers the services it serves and answers the
 * requests ferryd forwards to it. Both speak the binary protocol described
 * in docs/protocol.md through the codec that ferryd itself uses.
 *
 * Threads: a struct ferry_client or struct ferry_worker belongs to one
 * thread at a time; no function here may be called on the same object from
 * two threads at once. Different objects are independent. The only
 * exception is ferry_worker_stop(), which may be called from any thread or
 * from a signal handler.
 */
#ifndef FERRY_H
#define FERRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_PROTOCOL_VERSION 2

/*
 * Every error ferry knows, declared once. The number is the stable code
 * carried in ERROR frames; append only, never renumber. The name is what
 * tools print (for example "DEADLINE").
 */
#define FERRY_ERRORS(X)                                                      \
    X(PROTO, 1, "malformed frame")                                           \
    X(TOO_BIG, 2, "frame too large")                                         \
    X(VERSION, 3, "unsupported protocol version")                            \
    X(UNKNOWN_TYPE, 4, "unknown frame type")                                 \
    X(UNKNOWN_SERVICE, 5, "unknown service")                                 \
    X(NO_WORKER, 6, "no worker available for service")                       \
    X(DEADLINE, 7, "deadline exceeded")                                      \
    X(WORKER_LOST, 8, "worker lost while holding the request")               \
    X(WORKER_ERROR, 9, "worker failed to handle the request")                \
    X(OVERLOADED, 10, "overloaded, try again later")                         \
    X(INVALID_ARGUMENT, 11, "invalid argument")                              \
    X(CANCELLED, 12, "request cancelled")                                    \
    X(SHUTTING_DOWN, 13, "daemon is shutting down")                          \
    X(DUPLICATE_ID, 14, "request id already in flight")                      \
    X(UNAUTHORIZED, 15, "not authorized")                                    \
    X(CONNECTION, 16, "connection failed")                                   \
    X(NOMEM, 17, "out of memory")                                            \
    X(SYS, 18, "system error")                                               \
    X(CIRCUIT_OPEN, 19, "circuit open, failing fast")                        \
    X(SERVICE_DISABLED, 20, "service disabled by an operator")               \
    X(SLOW_CONSUMER, 21, "peer does not read what is sent to it")            \
    X(TIMED_OUT, 22, "the connection was silent too long")                   \
    X(NO_SPACE, 23, "no space left in the store")                            \
    X(NOT_MY_VBUCKET, 24, "this node does not own the key's vbucket")         \
    X(FENCED, 25, "node is not a cluster member now")                        \
    X(UNAVAILABLE, 26, "the data's node is down, try again")

enum ferry_err {
    FERRY_OK = 0,
#define FERRY__ERR_ENUM(name, code, msg) FERRY_E##name = code,
    FERRY_ERRORS(FERRY__ERR_ENUM)
#undef FERRY__ERR_ENUM
    FERRY__ERR_COUNT
};
typedef enum ferry_err ferry_err;

/* The message of an error ("deadline exceeded"); never NULL. */
const char *ferry_strerror(ferry_err err);

/* The stable name of an error ("DEADLINE"; "OK" for 0); never NULL. */
const char *ferry_errname(ferry_err err);

/* Request flags (the REQUEST frame's flags byte). */
#define FERRY_IDEMPOTENT 0x01u /* safe to run twice: may be retried */

/*
 * Connection options shared by callers and workers. Zero fields take the
 * defaults given beside them; pass NULL for all defaults. Strings are
 * copied.
 */
struct ferry_opts {
    const char *name;            /* shown in ferry services; default pid */
    const char *token;           /* access token sent in HELLO, or NULL */
    uint32_t heartbeat_ms;       /* idle ping interval; workers: default
                                    2500; callers: default 0 (none) */
    uint32_t connect_timeout_ms; /* connect + HELLO; default 2000 */
    uint32_t reconnect_min_ms;   /* first reconnect delay; default 50 */
    uint32_t reconnect_max_ms;   /* backoff cap; default 2000 */
    uint32_t max_frame;          /* largest frame body accepted, told to
                                    ferryd in HELLO: it sends nothing
                                    larger; at least 1028; default 16 MiB */
};

/* ---------------------------------------------------------------- caller */

struct ferry_client;

/* One call. Pointers are borrowed for the duration of the function. */
struct ferry_request {
    const char *service;   /* service name, 1..255 bytes */
    const void *key;       /* routing key or NULL */
    size_t key_len;        /* 0..1024 */
    const void *payload;   /* request body, may be NULL when len is 0 */
    size_t payload_len;    /* at most the max frame size less headers */
    uint32_t deadline_ms;  /* time allowed; 0 means the daemon default */
    uint32_t flags;        /* FERRY_IDEMPOTENT or 0 */
};

/*
 * The outcome of a synchronous call. On success err is FERRY_OK and data
 * holds the reply payload; on failure err is the code and data holds the
 * error message (not NUL-terminated, see len). data is owned by the reply:
 * release it with ferry_reply_release().
 */
struct ferry_reply {
    ferry_err err; /* FERRY_OK or the failure */
    uint8_t *data; /* owned: payload, or error message */
    size_t len;    /* bytes in data */
};

void ferry_reply_release(struct ferry_reply *reply);

/*
 * Completion of an asynchronous call. data/len is the reply payload when err
 * is FERRY_OK, else the error message. data is borrowed: valid only until
 * the callback returns or makes a synchronous call. The callback may issue
 * new calls.
 */
typedef void (*ferry_reply_cb)(void *arg, ferry_err err, const void *data,
                               size_t len);

/*
 * Creates a caller for addr ("host:port", "[v6]:port" or "unix:/path"; NULL
 * means $FERRY_ADDR, else 127.0.0.1:7700). It connects lazily, on the first
 * call or on ferry_client_connect(). Returns FERRY_EINVALID_ARGUMENT for a
 * bad address or a max_frame below 1028, FERRY_ENOMEM.
 *
 * Heartbeats: a caller announces opts->heartbeat_ms only when it is set.
 * It then sends PING whenever it has sent nothing for that long, and takes
 * ferryd for dead after three of ferryd's own intervals (HELLO_OK) without
 * a frame from it: the connection is closed and the calls in flight fail
 * with FERRY_ECONNECTION, long before their deadlines. Both happen only
 * while the client is driven (ferry_call(), ferry_client_run()), so a
 * program that announces an interval and is idle between calls calls
 * ferry_client_run(c, 0) at least every heartbeat_ms, or ferryd closes it
 * after three intervals of silence. With 0 (the default) the client is
 * never timed out for silence and never times ferryd out.
 */
ferry_err ferry_client_new(const char *addr, const struct ferry_opts *opts,
                           struct ferry_client **out);

/* Closes the connection; pending asynchronous calls complete with
 * FERRY_ECANCELLED before it returns. NULL is allowed. */
void ferry_client_free(struct ferry_client *c);

/*
 * Connects and exchanges HELLO now, waiting up to connect_timeout_ms.
 * Returns FERRY_ECONNECTION (refused, reset, timed out), FERRY_EVERSION,
 * FERRY_EUNAUTHORIZED. After a lost connection the client reconnects by
 * itself on the next call, no sooner than its backoff allows: ferry_call()
 * waits for the backoff and tries again, within the call's deadline (so a
 * call made while ferryd restarts succeeds once it is back), while
 * ferry_call_async() made during the backoff fails at once with
 * FERRY_ECONNECTION. A client that has never connected fails at once too.
 */
ferry_err ferry_client_connect(struct ferry_client *c);

/*
 * Synchronous call: sends req and waits for its reply or its deadline.
 * When a client that was connected cannot reach ferryd again, it keeps
 * reconnecting (with the backoff) until the deadline; the request is sent
 * once, on the first connection that comes up. Returns the same code as out->err. out is always written.
 * Other asynchronous calls on the client make progress while it waits.
 */
ferry_err ferry_call(struct ferry_client *c, const struct ferry_request *req,
                     struct ferry_reply *out);

/*
 * Asynchronous call: queues req (copied) and returns. cb runs exactly once,
 * from ferry_client_run() or ferry_call(), with the reply, the daemon's
 * error, or a local error (FERRY_ECONNECTION when the connection drops,
 * FERRY_EDEADLINE when the reply does not come in time). Returns an error
 * without calling cb when the request is invalid (FERRY_EINVALID_ARGUMENT),
 * larger than the max_frame ferryd announced in HELLO_OK (FERRY_ETOO_BIG:
 * refused here, so the connection stays), or cannot be queued
 * (FERRY_ECONNECTION, FERRY_ENOMEM).
 */
ferry_err ferry_call_async(struct ferry_client *c,
                           const struct ferry_request *req, ferry_reply_cb cb,
                           void *arg);

/*
 * As ferry_call_async(), and writes the call's request id (unique among
 * this client's calls) to *id (may be NULL) when it returns FERRY_OK, for
 * ferry_call_cancel().
 */
ferry_err ferry_call_start(struct ferry_client *c,
                           const struct ferry_request *req, ferry_reply_cb cb,
                           void *arg, uint64_t *id);

/*
 * Asks ferryd to cancel the asynchronous call id (a CANCEL frame, sent with
 * the next write). The call still ends exactly once through its callback:
 * with FERRY_ECANCELLED from ferryd, or with the reply or error that was
 * already on its way, or locally at its deadline. Returns
 * FERRY_EINVALID_ARGUMENT when no call with that id is in flight (it has
 * ended), FERRY_ENOMEM.
 */
ferry_err ferry_call_cancel(struct ferry_client *c, uint64_t id);

/*
 * Drives I/O: writes queued requests, reads replies, runs callbacks, sends
 * heartbeats. Returns when no call is pending, or after timeout_ms (-1: no
 * limit). Returns FERRY_OK, or FERRY_EDEADLINE when time ran out first.
 */
ferry_err ferry_client_run(struct ferry_client *c, int timeout_ms);

/* The socket to watch for readability, or -1 while disconnected. */
int ferry_client_fd(const struct ferry_client *c);

/* Calls queued or sent and not yet completed. */
size_t ferry_client_pending(const struct ferry_client *c);

/*
 * Why the last connect attempt or the connection failed ("ferryd at
 * '127.0.0.1:7700' refused the connection: UNAUTHORIZED: invalid token for
 * role 'caller'"), for a program to show beside the code it got;
 * "" while nothing failed. Valid until the next call on the client.
 */
const char *ferry_client_errmsg(const struct ferry_client *c);

/*
 * How many times the client has connected (HELLO_OK received) since it was
 * made: 1 after its first connection, one more for each reconnect. For
 * telling a flapping link from a steady one.
 */
uint64_t ferry_client_connects(const struct ferry_client *c);

/* ---------------------------------------------------------------- worker */

struct ferry_worker;
struct ferry_job;

/*
 * Called for each request. The job handle stays valid until it is answered
 * with ferry_job_reply() or ferry_job_fail(), which the handler may do at
 * once or later from the worker's thread (for example from another
 * handler); the payload is valid only until the handler returns.
 */
typedef void (*ferry_handler_cb)(struct ferry_job *job, void *arg);

/*
 * Called when ferryd cancels a job the program holds (its caller cancelled
 * or went away, or its deadline passed). The job stays valid and held: the
 * program still answers it with ferry_job_reply() or ferry_job_fail() to
 * release it (possibly from this callback); that answer is not sent.
 */
typedef void (*ferry_cancel_cb)(struct ferry_job *job, void *arg);

/* As ferry_client_new(), for a worker. */
ferry_err ferry_worker_new(const char *addr, const struct ferry_opts *opts,
                           struct ferry_worker **out);

/* Closes the connection and frees the worker; unanswered jobs are
 * dropped (ferryd fails them with WORKER_LOST). NULL is allowed. */
void ferry_worker_free(struct ferry_worker *w);

/*
 * Declares a service served by this worker, taking up to credit requests at
 * once (1..65535). Call before ferry_worker_run(); registration is
 * repeated on every reconnect. Returns FERRY_EINVALID_ARGUMENT.
 */
ferry_err ferry_worker_register(struct ferry_worker *w, const char *service,
                                uint32_t credit, ferry_handler_cb handler,
                                void *arg);

/*
 * Connects, registers and serves until ferry_worker_stop(); reconnects with
 * backoff when the connection drops. ready (may be NULL) is called once
 * each time every service is registered. Returns FERRY_OK after a stop,
 * or the error that made serving impossible (FERRY_EUNAUTHORIZED,
 * FERRY_EVERSION, a registration refused).
 */
ferry_err ferry_worker_run(struct ferry_worker *w,
                           void (*ready)(struct ferry_worker *w, void *arg),
                           void *arg);

/*
 * One turn of the worker's loop, for embedding in a program's own loop:
 * connects and registers when needed, writes queued replies, waits up to
 * timeout_ms (-1: no limit, 0: do not wait) for requests and runs their
 * handlers. Returns FERRY_OK, or an error as ferry_worker_run().
 */
ferry_err ferry_worker_poll(struct ferry_worker *w, int timeout_ms);

/* The socket to watch for readability, or -1 while disconnected. */
int ferry_worker_fd(const struct ferry_worker *w);

/*
 * Why the last connect attempt, the connection or a registration failed,
 * as ferry_client_errmsg(); for telling the user why ferry_worker_run()
 * returned an error. Valid until the next call on the worker.
 */
const char *ferry_worker_errmsg(const struct ferry_worker *w);

/*
 * Whether the worker is connected and every declared service is registered;
 * for programs that drive ferry_worker_poll(), which has no ready callback.
 */
bool ferry_worker_is_ready(const struct ferry_worker *w);

/*
 * Sets the function called when ferryd cancels a held job (NULL: none, the
 * default; a cancelled job's answer is dropped all the same).
 */
void ferry_worker_on_cancel(struct ferry_worker *w, ferry_cancel_cb cb,
                            void *arg);

/*
 * Makes ferry_worker_run() return soon; async-signal-safe. From then on
 * ferry_worker_poll() tells ferryd to send no more requests (DRAIN) and
 * does not reconnect, so a program driving it can answer the jobs it holds
 * before it stops polling.
 */
void ferry_worker_stop(struct ferry_worker *w);

/* The request payload; valid only inside the handler. */
const void *ferry_job_payload(const struct ferry_job *job, size_t *len);

/* The routing key (len 0 when none); valid only inside the handler. */
const void *ferry_job_key(const struct ferry_job *job, size_t *len);

/* ferryd's id of the request, unique among the jobs held on one
 * connection; for logs, and to match a cancel to its job. */
uint64_t ferry_job_id(const struct ferry_job *job);

/* The service this job was sent to. Valid until the job is answered. */
const char *ferry_job_service(const struct ferry_job *job);

/* Milliseconds left before the caller's deadline (0 when passed). */
uint32_t ferry_job_remaining_ms(const struct ferry_job *job);

/* Answers the job with data (copied) and releases it. */
ferry_err ferry_job_reply(struct ferry_job *job, const void *data,
                          size_t len);

/*
 * Answers the job with an error (code as listed above; usually
 * FERRY_EINVALID_ARGUMENT or FERRY_EWORKER_ERROR) and a message (copied,
 * may be NULL), and releases it.
 */
ferry_err ferry_job_fail(struct ferry_job *job, ferry_err code,
                         const char *message);

#ifdef __cplusplus
}
#endif

#endif
