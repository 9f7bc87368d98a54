/* SPDX-License-Identifier: MIT */
/*
 * service.h - services, the workers registered for them and their queues.
 *
 * A service is created on its first REGISTER or its first request. It holds
 * the registrations of the workers that serve it (each with its credit),
 * a bounded FIFO of requests waiting for capacity, and the counters shown
 * by `ferry services`. Dispatch picks, among registrations with free
 * credit, the worker with the fewest requests outstanding: a scan for a
 * handful of workers, power of two random choices beyond that.
 *
 * Outlier ejection: a worker whose requests fail eject_failures times in
 * a row (DEADLINE after it held the request for at least half of the
 * deadline, or its own WORKER_ERROR,
 * OVERLOADED or SHUTTING_DOWN) gets no new request for eject_base_ms times
 * its ejections so far, at most eject_max_ms. The state belongs to the
 * worker's session, not to one registration: a worker is one process, and
 * its failures for one service say something about all of them. When the
 * time is over, the worker gets exactly one probe request: success makes
 * it healthy, failure ejects it again. The expiry is checked lazily when a
 * worker is picked, with the loop clock; no timer per worker.
 *
 * Forgetting: a service that is not built in, has no registration, no
 * request record and is not disabled is idle. The broker forgets an idle
 * service (frees it, its stats with it) at once when it never had a
 * worker, else once it has been idle for service_idle_forget_ms: the
 * table of services cannot be filled for good by peers that are gone.
 *
 * Circuit breaker: when the failures that are a service's fault (lost,
 * DEADLINE at a worker, its WORKER_ERROR, OVERLOADED, SHUTTING_DOWN) pass
 * breaker_error_percent of at least breaker_min_requests outcomes over
 * breaker_window_ms, or when every worker is ejected, its circuit opens:
 * requests fail at once with CIRCUIT_OPEN for breaker_open_ms. Then it is
 * half open: breaker_probes requests go through; all succeeding closes it,
 * one failing opens it again.
 */
#ifndef FERRY_BROKER_SERVICE_H
#define FERRY_BROKER_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/stats.h"
#include "core/hist.h"
#include "core/list.h"
#include "core/timer.h"
#include "proto/frame.h"

struct backend;
struct broker;
struct conn;
struct loop;
struct session;
struct service;

/* One worker's registration of one service; owned by the worker's
 * session, listed (borrowed) by the service. */
struct wreg {
    struct session *worker; /* borrowed: the registering worker */
    struct service *svc;    /* borrowed: the service registered */
    uint32_t credit;        /* requests the worker takes at once */
    uint32_t in_flight;     /* requests of svc at the worker now */
    size_t slot;            /* index in svc->regs */
};

/* Seconds in the retry budget's sliding window. */
#define SERVICE_BUDGET_S 10

/* A service's requests and retries of the last SERVICE_BUDGET_S seconds,
 * one slot per loop second, cleared lazily like struct stats. */
struct service_budget {
    uint64_t second[SERVICE_BUDGET_S];   /* loop second + 1 held, or 0 */
    uint32_t requests[SERVICE_BUDGET_S]; /* requests that arrived */
    uint32_t retries[SERVICE_BUDGET_S];  /* retries made */
};

/* Slots in a circuit's window, each a tenth of breaker_window_ms. */
#define SERVICE_WINDOW_SLOTS 10

enum service_circuit {
    CIRCUIT_CLOSED = 0,   /* requests go through */
    CIRCUIT_OPEN = 1,     /* requests fail with CIRCUIT_OPEN */
    CIRCUIT_HALF_OPEN = 2 /* a few probes go through */
};

/* Outcomes at workers over the window, cleared lazily by slot. */
struct service_window {
    uint64_t slot[SERVICE_WINDOW_SLOTS];   /* slot number + 1, or 0 */
    uint32_t total[SERVICE_WINDOW_SLOTS];  /* outcomes */
    uint32_t failed[SERVICE_WINDOW_SLOTS]; /* of them, failures */
};

/* The breaker settings, from struct config. */
struct service_breaker {
    uint32_t error_percent; /* failure rate that opens; 0 = off */
    uint32_t min_requests;  /* outcomes needed in the window */
    uint32_t window_ms;     /* span of the window */
    uint32_t open_ms;       /* open before half open */
    uint32_t probes;        /* probes that must succeed */
};

/* Owned by the broker's service map. */
struct service {
    struct loop *loop;                 /* borrowed: the clock of stats */
    char name[FRAME_MAX_NAME + 1];     /* NUL-terminated for logs */
    size_t name_len;                   /* bytes of name */
    struct backend *backend;           /* borrowed: what serves it (the
                                          worker pool, an in-daemon
                                          service), never NULL */
    bool had_workers;                  /* a worker registered it once */
    uint8_t cluster_kind;              /* the cluster's routing of it
                                          (cluster_impl.h), 0 unknown */
    bool pick_by_key;                  /* a keyed_service of workers: the
                                          worker is picked by the routing
                                          key (service_pick_keyed) */
    struct wreg **regs;                /* owned array of borrowed regs */
    size_t n_regs;                     /* registrations in regs */
    size_t cap_regs;                   /* slots in regs */
    size_t n_limited;                  /* regs whose worker announced a
                                          max_frame */
    struct list queue;                 /* struct req waiting, oldest first */
    uint32_t queued;                   /* requests in queue */
    uint32_t in_flight;                /* requests at its workers */
    uint32_t reqs;                     /* request records that point here
                                          (queued, at a worker, waiting
                                          for a retry); kept by the
                                          broker */
    uint64_t last_active;              /* loop ms of its last request,
                                          registration or enable, or the
                                          end of its last request */
    struct timer forget;               /* armed by the broker while idle */
    bool disabled;                     /* an operator disabled it */
    uint8_t *fallback;                 /* owned: the fixed reply of a
                                          disabled service (never NULL
                                          when set, even empty), or NULL */
    uint32_t fallback_len;             /* bytes of fallback */
    uint64_t fallbacks;                /* requests answered by fallback */
    uint64_t requests;                 /* requests accepted for it */
    uint64_t replies;                  /* requests answered with REPLY */
    uint64_t errors[FERRY__ERR_COUNT]; /* requests ended by ERROR, by code */
    struct hist latency;               /* arrival to reply, microseconds */
    struct stats stats;                /* the last minute, per second */
    uint64_t retries;                  /* requests sent again */
    uint64_t retries_denied;           /* retries the budget refused */
    struct service_budget budget;      /* recent requests and retries */
    uint64_t ejections;                /* workers ejected for its requests */
    enum service_circuit circuit;      /* breaker state */
    uint64_t circuit_until;            /* open: loop ms it turns half open */
    uint32_t probes_sent;              /* half open: probes admitted */
    uint32_t probes_ok;                /* half open: probes succeeded */
    uint32_t circuit_round;            /* half-open rounds so far: a probe
                                          carries its round */
    uint64_t circuit_opens;            /* times the circuit opened */
    struct service_window window;      /* recent outcomes at workers */
    uint64_t window_until;             /* loop ms the window's current
                                          slot ends (0: unknown) */
    uint32_t window_at;                /* index of that slot */
};

/* The ejection settings, from struct config. */
struct service_eject {
    uint32_t failures;    /* failures in a row that eject; 0 = off */
    uint32_t base_ms;     /* ejection length per ejection so far */
    uint32_t max_ms;      /* longest ejection */
    uint32_t max_percent; /* of svc's workers ejected at once */
};

/* A service of loop l named name (1..255 bytes), served by backend
 * (never NULL; borrowed); NULL when out of memory. */
struct service *service_new(struct loop *l, struct slice name,
                            struct backend *backend);

/* Frees svc; it must hold no registration and no queued request. */
void service_free(struct service *svc);

/* Whether nothing keeps svc: a transient backend (the worker pool's), no
 * registration, no request record, not disabled. */
bool service_is_idle(const struct service *svc);

/* Whether svc is idle and has been for forget_ms by the loop clock. */
bool service_is_forgettable(const struct service *svc, uint32_t forget_ms);

/* Something happened to svc now: its idle time starts again. */
void service_touch(struct service *svc);

/* Adds reg to svc's workers; FERRY_ENOMEM when it cannot. */
ferry_err service_add_reg(struct service *svc, struct wreg *reg);
void service_remove_reg(struct service *svc, struct wreg *reg);

/* Registrations whose worker takes new requests (not draining). */
size_t service_active_workers(const struct service *svc);

/*
 * The registration that should take the next request, of body bytes of
 * REQUEST body, or NULL when every worker is busy, draining, not reading
 * or announced a max_frame below body. rng is the broker's random state,
 * used for the two choices.
 */
struct wreg *service_pick(struct service *svc, uint64_t *rng, size_t body);

/*
 * Whether some registered worker of svc (busy or not) takes a REQUEST
 * body of body bytes, or svc has no worker yet: false means it can only
 * fail with TOO_BIG. A compare unless a worker announced a max_frame.
 */
bool service_takes(const struct service *svc, size_t body);

/*
 * Like service_pick, but never the registration of worker conn avoid
 * while another worker has free credit; the avoided one only when no
 * other worker may take requests (draining or ejected). NULL when nothing
 * fits.
 */
/* Of svc's workers free for body, the one of highest rendezvous weight
 * for key_hash (hrw_weight over the workers' conn ids), so one key keeps
 * going to one worker while it has room; NULL when none is free. */
struct wreg *service_pick_keyed(struct service *svc, uint64_t key_hash,
                                size_t body);

struct wreg *service_pick_avoid(struct service *svc, uint64_t *rng,
                                uint64_t avoid, size_t body);

/* Whether the worker of reg is ejected now (not counting its probe). */
bool service_reg_is_ejected(const struct service *svc, const struct wreg *reg);

/*
 * The worker of reg answered a request of svc: ok false for a failure that
 * is its own fault. Resets its failures on success; ejects it when they
 * reach the limit, unless that would eject more than max_percent of svc's
 * workers (or svc's only worker: a single worker is never ejected). A
 * probing worker is healthy again when its probe (probe set) succeeds,
 * ejected again when it fails; while it probes, the outcomes of requests
 * it held from before say nothing new and are ignored.
 * Returns true when this ejected the last worker of svc not ejected.
 */
bool service_worker_outcome(struct service *svc, struct wreg *reg, bool ok,
                            bool probe, const struct service_eject *ej);

/* A request was forwarded to reg's worker: true when it is the worker's
 * probe. */
bool service_worker_sent(struct wreg *reg);

/* The worker's probe left it without an outcome (cancelled): another
 * probe may be sent. */
void service_worker_unsent(struct wreg *reg);

/*
 * Whether a request of svc may go on by its circuit: always when closed,
 * never while open, and up to br->probes of them when half open, each with
 * *probe set to the half-open round it probes (0: not a probe). Turns an
 * open circuit half open when its time is over. O(1).
 */
bool service_circuit_admit(struct service *svc,
                           const struct service_breaker *br, uint32_t *probe);

/* A probe of round probe ended without an outcome: another may go. */
void service_circuit_unprobe(struct service *svc, uint32_t probe);

/*
 * A request of svc ended at a worker: ok false for a failure that is the
 * service's fault; probe the round it was admitted to probe, or 0. Only
 * the probes of the current half-open round decide it: one still out when
 * its round ended (the circuit reopened) counts like any other outcome.
 * Opens, closes or reopens the circuit. O(SERVICE_WINDOW_SLOTS).
 */
void service_circuit_outcome(struct service *svc,
                             const struct service_breaker *br, bool ok,
                             uint32_t probe);

/* The common outcome, a success of a closed circuit within the slot of
 * the window its last outcome went to, counted with one increment: true.
 * false when service_circuit_outcome() must count it. */
static inline bool
service_circuit_fast_ok(struct service *svc, uint64_t now)
{
    if (svc->circuit != CIRCUIT_CLOSED || now >= svc->window_until) {
        return false;
    }
    svc->window.total[svc->window_at]++;
    return true;
}

/* Opens svc's circuit; why says why, for the log. */
void service_circuit_open(struct service *svc, const struct service_breaker *br,
                          const char *why);

/* "closed", "open" or "half_open". */
const char *service_circuit_name(enum service_circuit c);

/* Counts one request accepted for svc. */
void service_count_request(struct service *svc);

/* Counts one request answered with REPLY after lat_us microseconds. */
void service_count_reply(struct service *svc, uint64_t lat_us);

/* Counts one request ended by ERROR code. */
void service_count_error(struct service *svc, ferry_err code);

/*
 * Whether one more retry fits svc's budget: retries of the last
 * SERVICE_BUDGET_S seconds stay below percent of its requests, or below
 * min_per_s per second. Counts a refusal in retries_denied. O(1).
 */
bool service_retry_allowed(struct service *svc, uint32_t percent,
                           uint32_t min_per_s);

/* Counts one retry of a request of svc. */
void service_count_retry(struct service *svc);

/*
 * An operator disables svc: new requests get SERVICE_DISABLED, or the
 * fixed reply fallback (copied) when it is not NULL. Requests already
 * accepted go on. FERRY_ENOMEM leaves svc as it was.
 */
ferry_err service_disable(struct service *svc, const void *fallback,
                          size_t len);

/* An operator enables svc again. */
void service_enable(struct service *svc);

/* Whether name may name a service: 1..255 bytes, none of them a control
 * byte (below 0x20, or 0x7f), so that logs and labels stay one line. */
bool service_name_is_valid(struct slice name);

/* Whether the name is reserved for ferryd's own services ("ferry."). */
bool service_name_is_reserved(struct slice name);

/* Whether the name is a built-in's or may become one: "echo" and every
 * "ferry." name. No worker may register one (a built-in is never
 * shadowed). */
bool service_name_is_builtin(struct slice name);

#endif
