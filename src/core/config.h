/* SPDX-License-Identifier: MIT */
/*
 * config.h - ferryd's settings: defaults, the INI file ([ferryd] section,
 * read with inih) and command-line flags, in that order of precedence
 * (flags win). Every key is documented in docs/config.md.
 *
 * The parsed struct config is owned by main() and borrowed by the loop and
 * the broker for the life of the process.
 */
#ifndef FERRY_CORE_CONFIG_H
#define FERRY_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"
#include "ferry.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_ROUTES 64
#define CONFIG_HTTP_DEFAULT "127.0.0.1:8080"
#define CONFIG_ROUTE_DEFAULT "GET /fib/{n} fib"
#define CONFIG_ERR_SIZE 512
#define CONFIG_OUTPUT_SLACK (64 * 1024) /* output_limit >= max_frame + this */
#define CONFIG_MIN_MEMORY (16 * 1024 * 1024) /* smallest max_memory but 0 */
#define CONFIG_MAX_KEYS 96 /* keys in the table, with room */
#define FERRYD_VERSION "0.1"
#define FERRYD_NAME "ferryd/" FERRYD_VERSION

/* Where a value came from; a later source replaces the listen list. */
enum config_source {
    CONFIG_SRC_DEFAULT = 0,
    CONFIG_SRC_FILE = 1,
    CONFIG_SRC_FLAG = 2
};

/* Owned by main(). */
struct config {
    char *listen[CONFIG_MAX_LISTEN];    /* owned strings; none = defaults */
    size_t n_listen;                    /* entries in listen */
    enum config_source listen_src;      /* who set listen */
    char *data_dir;                     /* owned; durable state (paths.h) */
    char *run_dir;                      /* owned; the default socket's
                                           folder, NULL = derived */
    uint32_t unix_socket_mode;          /* mode of unix sockets (0660) */
    char *name;                         /* owned; this daemon's name */
    char *config_file;                  /* owned; the file read, or NULL */
    enum log_level log_level;           /* threshold for log lines */
    uint32_t heartbeat_ms;              /* idle ping interval; 0 = never */
    uint32_t max_frame;                 /* largest body accepted */
    uint32_t default_deadline_ms;       /* for requests that give 0 */
    uint32_t max_deadline_ms;           /* longer deadlines are cut to this */
    uint32_t queue_limit;               /* requests queued per service */
    uint32_t service_max_in_flight;     /* requests of a service at its
                                           workers at once; 0 = credit only */
    uint64_t queue_bytes;               /* request bytes queued, all services */
    uint32_t worker_wait_ms;            /* wait for a first/returning worker */
    uint64_t high_water;                /* pending output that stops reading */
    uint64_t low_water;                 /* pending output that resumes it */
    uint64_t output_limit;              /* pending output that closes a
                                           conn (SLOW_CONSUMER); 0 = off */
    uint64_t output_soft_limit;         /* pending output that closes it
                                           when held too long; 0 = off */
    uint32_t output_soft_seconds;       /* how long is too long */
    uint64_t max_memory;                /* the daemon's memory budget;
                                           0 = off */
    uint32_t grace_ms;                  /* time to finish work on shutdown */
    uint32_t max_connections;           /* open connections at once */
    uint32_t handshake_timeout_ms;      /* time allowed before HELLO */
    uint32_t max_services;              /* services known at once */
    uint32_t max_services_per_worker;   /* services one worker conn may
                                           register */
    uint32_t service_idle_forget_ms;    /* an idle service (no worker, no
                                           request, no traffic) is
                                           forgotten after this */
    uint32_t max_in_flight;             /* unanswered requests per connection
                                           before ferryd stops reading it */
    char *caller_token;                 /* owned; HELLO token of callers and
                                           of gateway calls; NULL/"" = off */
    char *worker_token;                 /* owned; HELLO token of workers;
                                           NULL/"" = off */
    char *admin_token;                  /* owned; any role, admin endpoints;
                                           NULL/"" = off */
    char *memcache_listen;              /* owned; memcached face address,
                                           NULL = off */
    char *http;                         /* owned; HTTP address, NULL = off */
    char *routes[CONFIG_MAX_ROUTES];    /* owned "METHOD /path service" */
    size_t n_routes;                    /* entries in routes */
    int route_lines[CONFIG_MAX_ROUTES]; /* file line of each route, 0 when
                                           not from the file */
    enum config_source routes_src;      /* who set routes */
    uint32_t http_max_body;             /* largest HTTP body; 0 = max_frame */
    uint64_t http_conn_body_limit;      /* unfinished body bytes of one
                                           HTTP conn; 0 = off */
    uint32_t http_header_timeout_ms;    /* time to send a request head */
    uint32_t http_idle_timeout_ms;      /* idle HTTP connection closed */
    uint32_t http_max_connections;      /* HTTP connections open at once */
    uint32_t http_stall_timeout_ms;     /* a stalled stream's client closed */
    uint32_t retry_max;                 /* retries of an idempotent request */
    uint32_t retry_budget_percent;      /* retries per 100 requests, 10 s */
    uint32_t retry_budget_min_per_s;    /* retries always allowed per second */
    uint32_t retry_backoff_ms;          /* first retry's backoff ceiling */
    uint32_t retry_backoff_max_ms;      /* largest backoff ceiling */
    uint32_t eject_failures;            /* failures in a row that eject a
                                           worker; 0 = off */
    uint32_t eject_base_ms;             /* first ejection's length */
    uint32_t eject_max_ms;              /* longest ejection */
    uint32_t eject_max_percent;         /* share of a service's workers that
                                           may be ejected at once */
    uint32_t breaker_error_percent;     /* failure rate that opens a service's
                                           circuit; 0 = off */
    uint32_t breaker_min_requests;      /* outcomes in the window before */
    uint32_t breaker_window_ms;         /* span of the failure rate */
    uint32_t breaker_open_ms;           /* open before the probes */
    uint32_t breaker_probes;            /* probes that must succeed */
    uint32_t store_sync_ms;             /* 0 = fsync in every commit
                                           (always); N = every N ms */
    uint64_t store_max_bytes;           /* the store's map limit */
    uint64_t store_journal_max_bytes;   /* the journal's ring, at most */
    uint64_t cache_max_bytes;           /* ferry.cache's memory cap */
    uint32_t cache_item_max;            /* largest ferry.cache item */
    uint32_t node_id;                   /* ferry.id's node, 0..1023 */
    uint32_t id_clock_wait_ms;          /* ferry.id waits this long for a
                                           clock that went back */
    uint32_t topic_idle_ms;             /* a ferry.topic subscription with
                                           no POLL this long expires */
    char *cluster_etcd;                 /* owned; etcd endpoints, NULL =
                                           a single node */
    char *cluster_name;                 /* owned; NULL = "ferry" */
    uint32_t cluster_lease_ms;          /* the node's etcd lease */
    char *cluster_advertise;            /* owned; peer address, NULL = the
                                           first TCP listen address */
    uint32_t cluster_peer_credit;       /* outstanding per peer node */
    char *keyed_service;                /* owned; comma-separated names of
                                           keyed user services, or NULL */
    uint64_t topic_max_bytes;           /* ferry.topic's messages, at most */
};

/* Whether an access token is set (an empty one is off). */
static inline bool
config_token_is_set(const char *token)
{
    return token != NULL && token[0] != '\0';
}

/* What the command line asked for besides settings. */
enum config_action { CONFIG_RUN = 0, CONFIG_HELP = 1, CONFIG_VERSION = 2 };

/* Fills in every default; FERRY_ENOMEM when a default string cannot be
 * allocated. */
ferry_err config_init(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Sets one key ("heartbeat_ms" or "heartbeat-ms") from text. On
 * FERRY_EINVALID_ARGUMENT, err holds a message naming the key and value
 * (without any "file line N" prefix).
 */
ferry_err config_set(struct config *cfg, const char *key, const char *value,
                     enum config_source src, char *err, size_t err_size);

/* Reads an INI file; errors name the file, the line and the key. */
ferry_err config_load_file(struct config *cfg, const char *path, char *err,
                           size_t err_size);

/* Reads INI text from an open stream; path only names it in errors. */
ferry_err config_load_stream(struct config *cfg, FILE *f, const char *path,
                             char *err, size_t err_size);

/* Checks settings against each other (low_water <= high_water, ...). */
ferry_err config_check(const struct config *cfg, char *err, size_t err_size);

/*
 * Applies argv: --config FILE first, then every other flag over it, then
 * config_check(). *action tells whether to run or print help or version.
 */
ferry_err config_parse_args(struct config *cfg, int argc, char **argv,
                            enum config_action *action, char *err,
                            size_t err_size);

/* Names of the keys a reload changed, and of those it could not. */
struct config_changes {
    const char *applied[CONFIG_MAX_KEYS]; /* taking effect now */
    size_t n_applied;                     /* entries in applied */
    const char *kept[CONFIG_MAX_KEYS];    /* need a restart: old value kept */
    size_t n_kept;                        /* entries in kept */
};

/*
 * Hot reload: moves every changed value of next (a complete, checked
 * config) into live, except the keys that only a restart can change
 * (listen, data_dir, run_dir, name, http, max_frame and the HTTP timeouts), which
 * keep their running value and are listed in ch->kept. Strings move
 * rather than copy, so this cannot fail; next is left for
 * config_release().
 */
void config_apply(struct config *live, struct config *next,
                  struct config_changes *ch);

/*
 * Writes the runtime folder: run_dir when set, else its default (see
 * core/paths.h). FERRY_EINVALID_ARGUMENT when it does not fit in buf.
 */
ferry_err config_run_dir(const struct config *cfg, char *buf, size_t size);

/* Prints every flag with its default. */
void config_print_help(FILE *out);

#endif
