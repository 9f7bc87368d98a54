/* SPDX-License-Identifier: MIT */
/*
 * config.c - ferryd's settings from defaults, an INI file and flags.
 *
 * One table describes every key: its type, its limits, its default and its
 * help line, so the file parser, the flag parser, --help and the checks can
 * never disagree. Errors name the key (and the file and line) and the value
 * that was refused.
 */
#include "core/config.h"

#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/paths.h"

enum config_type {
    CT_MS,    /* uint32 count of milliseconds */
    CT_COUNT, /* uint32 count */
    CT_BYTES, /* size in bytes, k/m/g suffix allowed */
    CT_MODE,  /* uint32 file mode, in octal */
    CT_STR,   /* string */
    CT_LISTEN,
    CT_LEVEL,
    CT_HTTP, /* address or "off" */
    CT_ROUTE /* repeatable route spec, or "off" */
};

struct config_key {
    const char *name;      /* key with underscores */
    enum config_type type; /* how to parse it */
    size_t offset;         /* field in struct config */
    size_t size;           /* bytes of that field (numbers: 4 or 8) */
    uint64_t min;          /* smallest value allowed */
    uint64_t max;          /* largest value allowed */
    const char *dflt;      /* default, for --help */
    const char *help;      /* one line for --help */
};

#define OFF(f) offsetof(struct config, f)
#define FIELD(f) OFF(f), sizeof(((struct config *)0)->f)

static const struct config_key config_keys[] = {
    {"listen", CT_LISTEN, FIELD(listen), 0, 0,
     "127.0.0.1:7700,unix:<run_dir>/ferryd.sock",
     "address to listen on (repeatable; replaces the defaults)"},
    {"data_dir", CT_STR, FIELD(data_dir), 1, PATHS_MAX,
     "$STATE_DIRECTORY, else /var/lib/ferry (root), else "
     "$XDG_STATE_HOME/ferry or ~/.local/state/ferry",
     "folder for durable state (created 0700; must be safe)"},
    {"run_dir", CT_STR, FIELD(run_dir), 1, PATHS_MAX,
     "$RUNTIME_DIRECTORY, else /run/ferry (root), else "
     "$XDG_RUNTIME_DIR/ferry, else data_dir",
     "folder for the default unix socket (created 0700; must be safe)"},
    {"unix_socket_mode", CT_MODE, FIELD(unix_socket_mode), 0, 0777, "0660",
     "file mode of every unix socket (octal; connecting needs write)"},
    {"name", CT_STR, FIELD(name), 1, 255, "ferryd", "this daemon's name"},
    {"log_level", CT_LEVEL, FIELD(log_level), 0, 0, "info",
     "debug, info, warn or error"},
    {"heartbeat_ms", CT_MS, FIELD(heartbeat_ms), 0, 3600000, "2500",
     "ping a client that announced a heartbeat after this long idle "
     "(0 = never)"},
    {"max_frame", CT_BYTES, FIELD(max_frame), 1024, 1073741824, "16777216",
     "largest frame body accepted, in bytes"},
    {"default_deadline_ms", CT_MS, FIELD(default_deadline_ms), 1, 86400000,
     "5000", "deadline of a request that gives none"},
    {"max_deadline_ms", CT_MS, FIELD(max_deadline_ms), 1, 86400000, "60000",
     "longer deadlines are cut to this"},
    {"queue_limit", CT_COUNT, FIELD(queue_limit), 0, 10000000, "1024",
     "requests waiting per service before OVERLOADED"},
    {"service_max_in_flight", CT_COUNT, FIELD(service_max_in_flight), 0,
     10000000, "0",
     "requests of one service at its workers at once; more wait in its "
     "queue (0 = only the workers' credit limits it)"},
    {"queue_bytes", CT_BYTES, FIELD(queue_bytes), 0, UINT64_C(1) << 40,
     "33554432", "request bytes waiting in all queues before OVERLOADED"},
    {"worker_wait_ms", CT_MS, FIELD(worker_wait_ms), 0, 3600000, "2000",
     "how long a request waits for a service with no worker"},
    {"high_water", CT_BYTES, FIELD(high_water), 4096, UINT64_C(1) << 40,
     "4194304", "pending output that stops reading a connection"},
    {"low_water", CT_BYTES, FIELD(low_water), 0, UINT64_C(1) << 40, "1048576",
     "pending output below which reading resumes"},
    {"output_limit", CT_BYTES, FIELD(output_limit), 0, UINT64_C(1) << 40,
     "67108864",
     "output waiting for one connection past which it is closed with "
     "SLOW_CONSUMER (0 = off)"},
    {"output_soft_limit", CT_BYTES, FIELD(output_soft_limit), 0,
     UINT64_C(1) << 40, "16777216",
     "output waiting for one connection that closes it when held "
     "output_soft_seconds (0 = off)"},
    {"output_soft_seconds", CT_COUNT, FIELD(output_soft_seconds), 1, 86400,
     "10", "how long output may stay above output_soft_limit"},
    {"max_memory", CT_BYTES, FIELD(max_memory), 0, UINT64_C(1) << 44,
     "1073741824",
     "memory budget of the whole daemon: near it new requests get "
     "OVERLOADED and the biggest connections are closed (0 = off)"},
    {"grace_ms", CT_MS, FIELD(grace_ms), 0, 3600000, "5000",
     "time given to requests in flight on shutdown"},
    {"max_connections", CT_COUNT, FIELD(max_connections), 1, 1000000, "10000",
     "connections open at once"},
    {"handshake_timeout_ms", CT_MS, FIELD(handshake_timeout_ms), 1, 3600000,
     "5000", "time a new connection has to send HELLO"},
    {"max_services", CT_COUNT, FIELD(max_services), 1, 1000000, "4096",
     "services known at once"},
    {"max_services_per_worker", CT_COUNT, FIELD(max_services_per_worker), 1,
     1000000, "256",
     "services one worker connection may register; more get OVERLOADED"},
    {"service_idle_forget_ms", CT_MS, FIELD(service_idle_forget_ms), 0,
     86400000, "300000",
     "a service with no worker, no request and no traffic for this long "
     "is forgotten, its stats with it"},
    {"max_in_flight", CT_COUNT, FIELD(max_in_flight), 1, 10000000, "1024",
     "unanswered requests per connection before ferryd stops reading it"},
    {"caller_token", CT_STR, FIELD(caller_token), 0, 255, "none (off)",
     "token callers must send in HELLO (and HTTP gateway calls)"},
    {"worker_token", CT_STR, FIELD(worker_token), 0, 255, "none (off)",
     "token workers must send in HELLO to register services"},
    {"admin_token", CT_STR, FIELD(admin_token), 0, 255, "none (off)",
     "token accepted for any role; when set, the only one that shows "
     "internals and gives admin commands"},
    {"http", CT_HTTP, FIELD(http), 0, 0, CONFIG_HTTP_DEFAULT,
     "HTTP address (gateway, admin, dashboard), or off"},
    {"memcache_listen", CT_STR, FIELD(memcache_listen), 0, 255, "none (off)",
     "address of the memcached text protocol face (host:port or "
     "unix:PATH), or none"},
    {"route", CT_ROUTE, FIELD(routes), 0, 0, "'" CONFIG_ROUTE_DEFAULT "'",
     "'METHOD /path/{param} service' (repeatable; replaces the defaults; "
     "off = none)"},
    {"http_max_body", CT_BYTES, FIELD(http_max_body), 0, 1073741824,
     "0 (= max_frame)", "largest HTTP request body, else 413"},
    {"http_conn_body_limit", CT_BYTES, FIELD(http_conn_body_limit), 0,
     UINT64_C(1) << 40, "33554432",
     "bytes of unfinished request bodies one HTTP connection may hold, "
     "all its HTTP/2 streams together, else it is closed (0 = off)"},
    {"http_header_timeout_ms", CT_MS, FIELD(http_header_timeout_ms), 1, 3600000,
     "10000", "time a client has to send a whole request head"},
    {"http_idle_timeout_ms", CT_MS, FIELD(http_idle_timeout_ms), 1, 3600000,
     "30000", "an HTTP connection with no request is closed after this"},
    {"http_max_connections", CT_COUNT, FIELD(http_max_connections), 1, 1000000,
     "4096", "HTTP connections open at once; more are closed at accept"},
    {"http_stall_timeout_ms", CT_MS, FIELD(http_stall_timeout_ms), 0, 3600000,
     "10000",
     "a client that takes no piece of a stream or big answer for this long "
     "is closed (0 = never)"},
    {"retry_max", CT_COUNT, FIELD(retry_max), 0, 100, "2",
     "retries of an idempotent request whose worker failed (0 = none)"},
    {"retry_budget_percent", CT_COUNT, FIELD(retry_budget_percent), 0, 1000,
     "20", "retries allowed per 100 requests of a service, over 10 s"},
    {"retry_budget_min_per_s", CT_COUNT, FIELD(retry_budget_min_per_s), 0,
     1000000, "3", "retries per second a service may always make"},
    {"retry_backoff_ms", CT_MS, FIELD(retry_backoff_ms), 0, 60000, "5",
     "backoff before the first retry (doubles, full jitter)"},
    {"retry_backoff_max_ms", CT_MS, FIELD(retry_backoff_max_ms), 0, 60000,
     "100", "largest backoff before a retry"},
    {"eject_failures", CT_COUNT, FIELD(eject_failures), 0, 1000000, "5",
     "failures in a row that eject a worker for a while (0 = off)"},
    {"eject_base_ms", CT_MS, FIELD(eject_base_ms), 1, 86400000, "30000",
     "ejection length, times the worker's ejections so far"},
    {"eject_max_ms", CT_MS, FIELD(eject_max_ms), 1, 86400000, "300000",
     "longest ejection of a worker"},
    {"eject_max_percent", CT_COUNT, FIELD(eject_max_percent), 0, 100, "50",
     "share of a service's workers that may be ejected at once"},
    {"breaker_error_percent", CT_COUNT, FIELD(breaker_error_percent), 0, 100,
     "50", "failure rate of a service that opens its circuit (0 = off)"},
    {"breaker_min_requests", CT_COUNT, FIELD(breaker_min_requests), 1, 1000000,
     "20", "outcomes in the window before the failure rate counts"},
    {"breaker_window_ms", CT_MS, FIELD(breaker_window_ms), 10, 3600000, "10000",
     "window of a service's failure rate"},
    {"breaker_open_ms", CT_MS, FIELD(breaker_open_ms), 1, 3600000, "5000",
     "an open circuit fails requests fast this long, then probes"},
    {"store_sync", CT_MS, FIELD(store_sync_ms), 1, 60000, "always",
     "always: every write's reply waits for its fsync (group commit); N: "
     "fsync every N ms, losing at most N ms of acknowledged writes on "
     "power loss"},
    {"store_max_bytes", CT_BYTES, FIELD(store_max_bytes), 1048576,
     UINT64_C(1) << 44, "1073741824",
     "the store's map grows up to this; past it writes get NO_SPACE"},
    {"store_journal_max_bytes", CT_BYTES, FIELD(store_journal_max_bytes),
     262144, UINT64_C(1) << 32, "67108864",
     "store_sync = always: the journal takes a sixteenth of the free disk, "
     "at most this, allocated at start"},
    {"cache_max_bytes", CT_BYTES, FIELD(cache_max_bytes), 1048576,
     UINT64_C(1) << 44, "64m",
     "ferry.cache's memory cap: keys, values and overhead, counted as "
     "malloc hands them out; past it the least recently used go"},
    {"cache_item_max", CT_BYTES, FIELD(cache_item_max), 64, 1073741824, "1m",
     "largest ferry.cache item (key + value); larger ones get TOO_BIG"},
    {"node_id", CT_COUNT, FIELD(node_id), 0, 1023, "0",
     "ferry.id's node id (10 bits of every id): unique per ferryd"},
    {"id_clock_wait_ms", CT_MS, FIELD(id_clock_wait_ms), 0, 60000, "1000",
     "ferry.id waits this long for a clock that moved back, then OVERLOADED"},
    {"breaker_probes", CT_COUNT, FIELD(breaker_probes), 1, 1000, "3",
     "probe requests that must succeed to close a circuit"},
    {"topic_idle_ms", CT_MS, FIELD(topic_idle_ms), 100, 86400000, "30000",
     "a ferry.topic subscription with no POLL outstanding this long "
     "expires"},
    {"cluster_etcd", CT_STR, FIELD(cluster_etcd), 0, 1023, "none (off)",
     "etcd endpoints of the cluster (http://host:port, comma-separated), "
     "or none: a single node (docs/cluster.md)"},
    {"cluster_name", CT_STR, FIELD(cluster_name), 0, 64, "ferry",
     "the cluster's name: its nodes' keys live under /ferry/NAME/ in etcd"},
    {"cluster_lease_ms", CT_MS, FIELD(cluster_lease_ms), 2000, 600000,
     "3000",
     "the node's etcd lease: renewed every third of it; a node that could "
     "not renew it for this long minus a sixth fences itself"},
    {"cluster_advertise", CT_STR, FIELD(cluster_advertise), 0, 255,
     "the first TCP listen address",
     "host:port the other nodes dial for this node's peer link"},
    {"cluster_peer_credit", CT_COUNT, FIELD(cluster_peer_credit), 1, 65535,
     "1024",
     "requests one peer node may have outstanding at this node, and this "
     "node at each peer"},
    {"keyed_service", CT_STR, FIELD(keyed_service), 0, 4095, "none",
     "user services routed by the REQUEST's routing key: to the owner of "
     "its vbucket, then to a worker chosen by the key (comma-separated)"},
    {"topic_max_bytes", CT_BYTES, FIELD(topic_max_bytes), 65536,
     UINT64_C(1) << 40, "64m",
     "ferry.topic's stored messages, at most; past it the oldest are "
     "dropped from every buffer"},
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))
_Static_assert(N_KEYS <= CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");

static bool
config_is_token(const struct config_key *k)
{
    return k->offset == OFF(caller_token) || k->offset == OFF(worker_token) ||
           k->offset == OFF(admin_token);
}

static ferry_err config_set_number(struct config *cfg,
                                   const struct config_key *k,
                                   const char *value, char *err,
                                   size_t err_size);

/*
 * Numbers take their defaults from the key table, the one place they are
 * written (and shown by --help): the text up to the first space, so
 * "0 (= max_frame)" means 0.
 */
static void
config_numeric_defaults(struct config *cfg)
{
    char text[32], err[128];

    for (size_t i = 0; i < N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];
        size_t n;
        ferry_err rc;

        if (k->type != CT_MS && k->type != CT_COUNT && k->type != CT_BYTES &&
            k->type != CT_MODE) {
            continue;
        }
        n = strcspn(k->dflt, " ");
        assert(n < sizeof(text));
        memcpy(text, k->dflt, n);
        text[n] = '\0';
        rc = config_set_number(cfg, k, text, err, sizeof(err));
        assert(rc == FERRY_OK);
        (void)rc;
    }
}

ferry_err
config_init(struct config *cfg)
{
    char dir[PATHS_MAX + 1];

    memset(cfg, 0, sizeof(*cfg));
    /* With no home to be had, a folder whose creation fails by name. */
    if (paths_default_data_dir(dir, sizeof(dir)) != FERRY_OK) {
        snprintf(dir, sizeof(dir), "/var/lib/ferry");
    }
    cfg->data_dir = strdup(dir);
    cfg->name = strdup("ferryd");
    if (cfg->data_dir == NULL || cfg->name == NULL) {
        config_release(cfg);
        return FERRY_ENOMEM;
    }
    cfg->listen_src = CONFIG_SRC_DEFAULT;
    cfg->log_level = LOG_LVL_INFO;
    cfg->http = strdup(CONFIG_HTTP_DEFAULT);
    cfg->routes[0] = strdup(CONFIG_ROUTE_DEFAULT);
    if (cfg->http == NULL || cfg->routes[0] == NULL) {
        config_release(cfg);
        return FERRY_ENOMEM;
    }
    cfg->n_routes = 1;
    cfg->routes_src = CONFIG_SRC_DEFAULT;
    config_numeric_defaults(cfg);
    return FERRY_OK;
}

static void
config_clear_listen(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        free(cfg->listen[i]);
        cfg->listen[i] = NULL;
    }
    cfg->n_listen = 0;
}

static void
config_clear_routes(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        free(cfg->routes[i]);
        cfg->routes[i] = NULL;
    }
    cfg->n_routes = 0;
}

ferry_err
config_run_dir(const struct config *cfg, char *buf, size_t size)
{
    if (cfg->run_dir != NULL) {
        if (strlen(cfg->run_dir) >= size) {
            return FERRY_EINVALID_ARGUMENT;
        }
        memcpy(buf, cfg->run_dir, strlen(cfg->run_dir) + 1);
        return FERRY_OK;
    }
    return paths_default_run_dir(cfg->data_dir, buf, size);
}

void
config_release(struct config *cfg)
{
    config_clear_listen(cfg);
    config_clear_routes(cfg);
    free(cfg->http);
    cfg->http = NULL;
    free(cfg->data_dir);
    free(cfg->run_dir);
    free(cfg->name);
    free(cfg->config_file);
    free(cfg->caller_token);
    free(cfg->memcache_listen);
    cfg->memcache_listen = NULL;
    free(cfg->cluster_etcd);
    free(cfg->cluster_name);
    free(cfg->cluster_advertise);
    free(cfg->keyed_service);
    cfg->cluster_etcd = NULL;
    cfg->cluster_name = NULL;
    cfg->cluster_advertise = NULL;
    cfg->keyed_service = NULL;
    free(cfg->worker_token);
    free(cfg->admin_token);
    cfg->caller_token = NULL;
    cfg->worker_token = NULL;
    cfg->admin_token = NULL;
    cfg->data_dir = NULL;
    cfg->run_dir = NULL;
    cfg->name = NULL;
    cfg->config_file = NULL;
}

static const struct config_key *
config_find(const char *key)
{
    char norm[64];
    size_t n = strlen(key);

    if (n >= sizeof(norm)) {
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        norm[i] = key[i] == '-' ? '_' : key[i];
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(config_keys[i].name, norm) == 0) {
            return &config_keys[i];
        }
    }
    return NULL;
}

/* Parses a whole unsigned number with an optional size suffix. */
static bool
config_parse_number(const char *text, bool sizes, int base, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"k", 1024},    {"kib", 1024},    {"kb", 1024},
        {"m", 1 << 20}, {"mib", 1 << 20}, {"mb", 1 << 20},
        {"g", 1 << 30}, {"gib", 1 << 30}, {"gb", 1 << 30},
    };
    unsigned long long v;
    uint64_t mult = 1;
    char *end;

    while (*text == ' ' || *text == '\t') {
        text++;
    }
    if (*text < '0' || *text > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(text, &end, base);
    if (errno != 0) {
        return false;
    }
    if (*end != '\0') {
        bool found = false;
        if (!sizes) {
            return false;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcasecmp(end, units[i].suffix) == 0) {
                mult = units[i].mult;
                found = true;
                break;
            }
        }
        if (!found) {
            return false;
        }
    }
    if (v > UINT64_MAX / mult) {
        return false;
    }
    *out = (uint64_t)v * mult;
    return true;
}

static ferry_err
config_add_listen(struct config *cfg, const char *value, enum config_source src,
                  char *err, size_t err_size)
{
    const char *p = value;

    if (src > cfg->listen_src) {
        config_clear_listen(cfg);
        cfg->listen_src = src;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        struct addr a;
        char *item;

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
            n--;
        }
        item = strndup(p, n);
        if (item == NULL) {
            snprintf(err, err_size, "listen: out of memory");
            return FERRY_ENOMEM;
        }
        if (addr_parse(item, &a) != FERRY_OK) {
            snprintf(err, err_size,
                     "listen: bad address '%s' (expected host:port, "
                     "[v6]:port or unix:/path)",
                     item);
            free(item);
            return FERRY_EINVALID_ARGUMENT;
        }
        if (cfg->n_listen == CONFIG_MAX_LISTEN) {
            snprintf(err, err_size, "listen: more than %d addresses",
                     CONFIG_MAX_LISTEN);
            free(item);
            return FERRY_EINVALID_ARGUMENT;
        }
        cfg->listen[cfg->n_listen++] = item;
        if (comma == NULL) {
            return FERRY_OK;
        }
        p = comma + 1;
    }
}

/* One route spec; its syntax is checked when the HTTP server parses it. */
static ferry_err
config_add_route(struct config *cfg, const char *value, enum config_source src,
                 char *err, size_t err_size)
{
    char *item;

    if (src > cfg->routes_src) {
        config_clear_routes(cfg);
        cfg->routes_src = src;
    }
    if (strcmp(value, "off") == 0) {
        config_clear_routes(cfg);
        return FERRY_OK;
    }
    if (cfg->n_routes == CONFIG_MAX_ROUTES) {
        snprintf(err, err_size, "route: more than %d routes",
                 CONFIG_MAX_ROUTES);
        return FERRY_EINVALID_ARGUMENT;
    }
    item = strdup(value);
    if (item == NULL) {
        snprintf(err, err_size, "route: out of memory");
        return FERRY_ENOMEM;
    }
    /* Routes are parsed later, by the HTTP side: keep the line for its
     * errors. */
    cfg->route_lines[cfg->n_routes] = 0; /* the file reader sets its own */
    cfg->routes[cfg->n_routes++] = item;
    return FERRY_OK;
}

static ferry_err
config_set_http(struct config *cfg, const char *value, char *err,
                size_t err_size)
{
    struct addr a;
    char *copy = NULL;

    if (strcmp(value, "off") != 0) {
        if (addr_parse(value, &a) != FERRY_OK || addr_is_unix(&a)) {
            snprintf(err, err_size,
                     "http: bad address '%s' (expected host:port, "
                     "[v6]:port or off)",
                     value);
            return FERRY_EINVALID_ARGUMENT;
        }
        copy = strdup(value);
        if (copy == NULL) {
            snprintf(err, err_size, "http: out of memory");
            return FERRY_ENOMEM;
        }
    }
    free(cfg->http);
    cfg->http = copy;
    return FERRY_OK;
}

static ferry_err
config_set_number(struct config *cfg, const struct config_key *k,
                  const char *value, char *err, size_t err_size)
{
    char *field = (char *)cfg + k->offset;
    uint64_t v;

    /* store_sync: "always" or a number of milliseconds. */
    if (k->offset == OFF(store_sync_ms) && strcasecmp(value, "always") == 0) {
        *(uint32_t *)(void *)field = 0;
        return FERRY_OK;
    }
    if (!config_parse_number(value, k->type == CT_BYTES,
                             k->type == CT_MODE ? 8 : 10, &v) ||
        v < k->min ||
        v > k->max) {
        snprintf(err, err_size,
                 "%s: bad value '%s' (expected %s from %llu to %llu)", k->name,
                 value,
                 k->offset == OFF(store_sync_ms) ? "always or milliseconds"
                 : k->type == CT_MS              ? "milliseconds"
                 : k->type == CT_BYTES ? "bytes (k, m, g suffix allowed)"
                                       : "a whole number",
                 (unsigned long long)k->min, (unsigned long long)k->max);
        if (k->type == CT_MODE) {
            snprintf(err, err_size,
                     "%s: bad value '%s' (expected an octal file mode from "
                     "%04llo to %04llo)",
                     k->name, value, (unsigned long long)k->min,
                     (unsigned long long)k->max);
        }
        return FERRY_EINVALID_ARGUMENT;
    }
    if (k->size == sizeof(uint64_t)) {
        *(uint64_t *)(void *)field = v;
    } else {
        assert(k->size == sizeof(uint32_t) && v <= UINT32_MAX);
        *(uint32_t *)(void *)field = (uint32_t)v;
    }
    return FERRY_OK;
}

ferry_err
config_set(struct config *cfg, const char *key, const char *value,
           enum config_source src, char *err, size_t err_size)
{
    const struct config_key *k = config_find(key);
    char *field;

    if (k == NULL) {
        snprintf(err, err_size, "unknown key '%s'", key);
        return FERRY_EINVALID_ARGUMENT;
    }
    if (value == NULL) {
        snprintf(err, err_size, "%s: missing value", k->name);
        return FERRY_EINVALID_ARGUMENT;
    }
    field = (char *)cfg + k->offset;
    switch (k->type) {
    case CT_LISTEN:
        return config_add_listen(cfg, value, src, err, err_size);
    case CT_ROUTE:
        return config_add_route(cfg, value, src, err, err_size);
    case CT_HTTP:
        return config_set_http(cfg, value, err, err_size);
    case CT_LEVEL: {
        enum log_level level;
        if (log_level_parse(value, &level) != FERRY_OK) {
            snprintf(err, err_size,
                     "%s: bad value '%s' (expected debug, info, warn or "
                     "error)",
                     k->name, value);
            return FERRY_EINVALID_ARGUMENT;
        }
        *(enum log_level *)(void *)field = level;
        return FERRY_OK;
    }
    case CT_STR: {
        size_t n = strlen(value);
        char *copy;
        if (n < k->min || n > k->max) {
            /* A token never appears in a message, even a refused one. */
            snprintf(err, err_size,
                     "%s: bad value '%s' (expected %llu to %llu characters)",
                     k->name, config_is_token(k) ? "<hidden>" : value,
                     (unsigned long long)k->min, (unsigned long long)k->max);
            return FERRY_EINVALID_ARGUMENT;
        }
        copy = strdup(value);
        if (copy == NULL) {
            snprintf(err, err_size, "%s: out of memory", k->name);
            return FERRY_ENOMEM;
        }
        free(*(char **)(void *)field);
        *(char **)(void *)field = copy;
        return FERRY_OK;
    }
    case CT_MS:
    case CT_COUNT:
    case CT_BYTES:
    case CT_MODE:
        return config_set_number(cfg, k, value, err, err_size);
    }
    return FERRY_EINVALID_ARGUMENT;
}

/* State of one INI file read. */
struct config_file_ctx {
    struct config *cfg; /* borrowed */
    const char *path;   /* borrowed */
    char *err;          /* borrowed: where the first error goes */
    size_t err_size;    /* bytes at err */
    ferry_err result;   /* first error, or FERRY_OK */
    FILE *f;            /* borrowed: the open file */
    int line;           /* lines read so far: the current entry's line */
    int err_line;       /* line of the first error in err */
};

/*
 * Reads one line for inih, counting lines so errors can name theirs. inih
 * reads into a buffer of num bytes (INI_MAX_LINE, 200 in Debian's build)
 * and would take the rest of a longer line for lines of their own: such
 * a line is refused here, whole, naming its line.
 */
static char *
config_ini_reader(char *str, int num, void *stream)
{
    struct config_file_ctx *ctx = stream;
    int n = 0, ch = EOF;

    while (n < num - 1 && (ch = getc(ctx->f)) != EOF) {
        str[n++] = (char)ch;
        if (ch == '\n') {
            break;
        }
    }
    if (n == 0) {
        return NULL;
    }
    str[n] = '\0';
    ctx->line++;
    if (ch != '\n' && ch != EOF && (ch = getc(ctx->f)) != '\n' && ch != EOF) {
        while ((ch = getc(ctx->f)) != '\n' && ch != EOF) {
        }
        if (ctx->result == FERRY_OK) {
            snprintf(ctx->err, ctx->err_size,
                     "config '%s' line %d: longer than %d bytes", ctx->path,
                     ctx->line, num - 1);
            ctx->result = FERRY_EINVALID_ARGUMENT;
            ctx->err_line = ctx->line;
        }
        str[0] = '\0';
    }
    return str;
}

static int
config_ini_handler(void *user, const char *section, const char *name,
                   const char *value)
{
    struct config_file_ctx *ctx = user;
    char msg[CONFIG_ERR_SIZE];
    ferry_err e;

    if (ctx->result != FERRY_OK) {
        return 1;
    }
    if (section[0] == '\0') {
        /* Settings before any [section] would be silently dropped. */
        snprintf(ctx->err, ctx->err_size,
                 "config '%s' line %d: '%s' is outside any section (put it "
                 "under [ferryd])",
                 ctx->path, ctx->line, name);
        ctx->result = FERRY_EINVALID_ARGUMENT;
        ctx->err_line = ctx->line;
        return 1;
    }
    if (strcmp(section, "ferryd") != 0) {
        /* Sections of later parts (http, cluster) are theirs to read. */
        return 1;
    }
    e = config_set(ctx->cfg, name, value, CONFIG_SRC_FILE, msg, sizeof(msg));
    if (e == FERRY_OK && ctx->cfg->n_routes > 0 &&
        config_find(name)->type == CT_ROUTE) {
        /* Routes are parsed later, by the HTTP side: keep the line for
         * its errors. */
        ctx->cfg->route_lines[ctx->cfg->n_routes - 1] = ctx->line;
    }
    if (e != FERRY_OK) {
        snprintf(ctx->err, ctx->err_size, "config '%s' line %d: %s", ctx->path,
                 ctx->line, msg);
        ctx->result = e;
        ctx->err_line = ctx->line;
    }
    return 1;
}

ferry_err
config_load_stream(struct config *cfg, FILE *f, const char *path, char *err,
                   size_t err_size)
{
    struct config_file_ctx ctx = {cfg, path, err, err_size, FERRY_OK, f, 0, 0};
    int rc =
        ini_parse_stream(config_ini_reader, &ctx, config_ini_handler, &ctx);

    /* inih reads on after a syntax error: name whichever came first. */
    if (ctx.result != FERRY_OK && (rc <= 0 || ctx.err_line < rc)) {
        return ctx.result;
    }
    if (rc != 0) {
        snprintf(err, err_size, "config '%s' line %d: syntax error", path, rc);
        return FERRY_EINVALID_ARGUMENT;
    }
    return FERRY_OK;
}

ferry_err
config_load_file(struct config *cfg, const char *path, char *err,
                 size_t err_size)
{
    FILE *f = fopen(path, "r");
    ferry_err e;

    if (f == NULL) {
        snprintf(err, err_size, "config '%s': %s", path, strerror(errno));
        return FERRY_EINVALID_ARGUMENT;
    }
    e = config_load_stream(cfg, f, path, err, err_size);
    fclose(f);
    return e;
}

ferry_err
config_check(const struct config *cfg, char *err, size_t err_size)
{
    if (cfg->low_water > cfg->high_water) {
        snprintf(err, err_size, "low_water: %llu is above high_water (%llu)",
                 (unsigned long long)cfg->low_water,
                 (unsigned long long)cfg->high_water);
        return FERRY_EINVALID_ARGUMENT;
    }
    if (cfg->output_limit != 0 &&
        cfg->output_limit < (uint64_t)cfg->max_frame + CONFIG_OUTPUT_SLACK) {
        snprintf(err, err_size,
                 "output_limit: %llu is below max_frame + 64 KiB (%llu): "
                 "one largest reply must fit",
                 (unsigned long long)cfg->output_limit,
                 (unsigned long long)cfg->max_frame + CONFIG_OUTPUT_SLACK);
        return FERRY_EINVALID_ARGUMENT;
    }
    if (cfg->output_limit != 0 && cfg->output_limit < cfg->high_water) {
        snprintf(err, err_size, "output_limit: %llu is below high_water (%llu)",
                 (unsigned long long)cfg->output_limit,
                 (unsigned long long)cfg->high_water);
        return FERRY_EINVALID_ARGUMENT;
    }
    if (cfg->max_memory != 0 && cfg->max_memory < CONFIG_MIN_MEMORY) {
        snprintf(err, err_size,
                 "max_memory: %llu is below 16 MiB (0 turns it off)",
                 (unsigned long long)cfg->max_memory);
        return FERRY_EINVALID_ARGUMENT;
    }
    if (cfg->default_deadline_ms > cfg->max_deadline_ms) {
        snprintf(err, err_size,
                 "default_deadline_ms: %u is above max_deadline_ms (%u)",
                 cfg->default_deadline_ms, cfg->max_deadline_ms);
        return FERRY_EINVALID_ARGUMENT;
    }
    return FERRY_OK;
}

/* Splits "--key=value" or "--key value"; returns false when no value. */
static bool
config_flag_value(int argc, char **argv, int *i, char *key, size_t key_size,
                  const char **value)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');

    if (eq != NULL) {
        size_t n = (size_t)(eq - arg);
        if (n >= key_size) {
            n = key_size - 1;
        }
        memcpy(key, arg, n);
        key[n] = '\0';
        *value = eq + 1;
        return true;
    }
    snprintf(key, key_size, "%s", arg);
    if (*i + 1 >= argc) {
        return false;
    }
    *value = argv[++*i];
    return true;
}

ferry_err
config_parse_args(struct config *cfg, int argc, char **argv,
                  enum config_action *action, char *err, size_t err_size)
{
    char key[64];
    const char *value;
    ferry_err e;

    *action = CONFIG_RUN;
    /* First pass: help, version and the file, so flags can override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *action = CONFIG_HELP;
            return FERRY_OK;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            *action = CONFIG_VERSION;
            return FERRY_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            continue;
        }
        if (!config_flag_value(argc, argv, &i, key, sizeof(key), &value)) {
            if (strcmp(key, "config") == 0) {
                snprintf(err, err_size, "--config: missing file name");
                return FERRY_EINVALID_ARGUMENT;
            }
            continue;
        }
        if (strcmp(key, "config") == 0) {
            char *copy = strdup(value);
            if (copy == NULL) {
                snprintf(err, err_size, "--config: out of memory");
                return FERRY_ENOMEM;
            }
            free(cfg->config_file);
            cfg->config_file = copy;
        }
    }
    if (cfg->config_file != NULL) {
        e = config_load_file(cfg, cfg->config_file, err, err_size);
        if (e != FERRY_OK) {
            return e;
        }
    }
    for (int i = 1; i < argc; i++) {
        char msg[CONFIG_ERR_SIZE];
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            snprintf(err, err_size, "unexpected argument '%s'", argv[i]);
            return FERRY_EINVALID_ARGUMENT;
        }
        if (!config_flag_value(argc, argv, &i, key, sizeof(key), &value)) {
            if (config_find(key) == NULL) {
                snprintf(err, err_size, "unknown flag '--%s'", key);
            } else {
                snprintf(err, err_size, "--%s: missing value", key);
            }
            return FERRY_EINVALID_ARGUMENT;
        }
        if (strcmp(key, "config") == 0) {
            continue;
        }
        if (config_find(key) == NULL) {
            snprintf(err, err_size, "unknown flag '--%s'", key);
            return FERRY_EINVALID_ARGUMENT;
        }
        e = config_set(cfg, key, value, CONFIG_SRC_FLAG, msg, sizeof(msg));
        if (e != FERRY_OK) {
            snprintf(err, err_size, "--%s", msg);
            /* Flags are spelled with dashes; so is their message. */
            for (char *p = err + 2; *p != '\0' && *p != ':'; p++) {
                if (*p == '_') {
                    *p = '-';
                }
            }
            return e;
        }
    }
    return config_check(cfg, err, err_size);
}

/*
 * Keys a reload cannot change: bound sockets and the folders, the
 * name, the frame limit already announced to every peer in HELLO_OK, and
 * the HTTP timeouts h2o copies into its context at start.
 */
static bool
config_needs_restart(const struct config_key *k)
{
    return k->type == CT_LISTEN || k->type == CT_HTTP ||
           k->offset == OFF(data_dir) || k->offset == OFF(run_dir) ||
           k->offset == OFF(unix_socket_mode) || k->offset == OFF(name) || k->offset == OFF(max_frame) ||
           k->offset == OFF(http_header_timeout_ms) ||
           k->offset == OFF(http_idle_timeout_ms) ||
           k->offset == OFF(store_sync_ms) ||
           k->offset == OFF(store_max_bytes) ||
           k->offset == OFF(store_journal_max_bytes) ||
           k->offset == OFF(cache_max_bytes) ||
           k->offset == OFF(cache_item_max) ||
           k->offset == OFF(node_id) || k->offset == OFF(id_clock_wait_ms) ||
           k->offset == OFF(memcache_listen) ||
           k->offset == OFF(cluster_etcd) || k->offset == OFF(cluster_name) ||
           k->offset == OFF(cluster_lease_ms) ||
           k->offset == OFF(cluster_advertise) ||
           k->offset == OFF(cluster_peer_credit) ||
           k->offset == OFF(keyed_service);
}

static bool
config_str_equal(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* Whether two lists of strings (listen, routes) are the same. */
static bool
config_list_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* Whether key k has the same value in a and b. */
static bool
config_key_equal(const struct config_key *k, const struct config *a,
                 const struct config *b)
{
    const char *fa = (const char *)a + k->offset;
    const char *fb = (const char *)b + k->offset;

    switch (k->type) {
    case CT_LISTEN:
        return config_list_equal(a->listen, a->n_listen, b->listen,
                                 b->n_listen);
    case CT_ROUTE:
        return config_list_equal(a->routes, a->n_routes, b->routes,
                                 b->n_routes);
    case CT_STR:
    case CT_HTTP:
        return config_str_equal(*(char *const *)(const void *)fa,
                                *(char *const *)(const void *)fb);
    case CT_LEVEL:
    case CT_MS:
    case CT_COUNT:
    case CT_BYTES:
    case CT_MODE:
        break;
    }
    return memcmp(fa, fb, k->size) == 0;
}

/* Moves key k's value from next into live (strings change owner). */
static void
config_key_move(const struct config_key *k, struct config *live,
                struct config *next)
{
    char *fl = (char *)live + k->offset;
    char *fn = (char *)next + k->offset;

    switch (k->type) {
    case CT_ROUTE: {
        size_t n_live = live->n_routes;
        for (size_t i = 0; i < CONFIG_MAX_ROUTES; i++) {
            char *tmp = live->routes[i];
            int line = live->route_lines[i];
            live->routes[i] = next->routes[i];
            live->route_lines[i] = next->route_lines[i];
            next->routes[i] = tmp;
            next->route_lines[i] = line;
        }
        live->n_routes = next->n_routes;
        next->n_routes = n_live;
        live->routes_src = next->routes_src;
        return;
    }
    case CT_STR:
    case CT_HTTP: {
        char *tmp = *(char **)(void *)fl;
        *(char **)(void *)fl = *(char **)(void *)fn;
        *(char **)(void *)fn = tmp;
        return;
    }
    case CT_LISTEN: /* needs a restart: never moved */
        return;
    case CT_LEVEL:
    case CT_MS:
    case CT_COUNT:
    case CT_BYTES:
    case CT_MODE:
        memcpy(fl, fn, k->size);
        return;
    }
}

void
config_apply(struct config *live, struct config *next,
             struct config_changes *ch)
{
    ch->n_applied = 0;
    ch->n_kept = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];
        if (config_key_equal(k, live, next)) {
            continue;
        }
        if (config_needs_restart(k)) {
            ch->kept[ch->n_kept++] = k->name;
            continue;
        }
        config_key_move(k, live, next);
        ch->applied[ch->n_applied++] = k->name;
    }
}

static const char *
config_metavar(const struct config_key *k)
{
    switch (k->type) {
    case CT_MS:
        return k->offset == OFF(store_sync_ms) ? "always|MS" : "MS";
    case CT_COUNT:
        return "N";
    case CT_MODE:
        return "MODE";
    case CT_BYTES:
        return "BYTES";
    case CT_LISTEN:
        return "ADDR";
    case CT_LEVEL:
        return "LEVEL";
    case CT_HTTP:
        return "ADDR|off";
    case CT_ROUTE:
        return "'METHOD /PATH SERVICE'";
    case CT_STR:
        break;
    }
    if (config_is_token(k)) {
        return "TOKEN";
    }
    return k->offset == OFF(data_dir) || k->offset == OFF(run_dir) ? "DIR"
                                                                   : "TEXT";
}

void
config_print_help(FILE *out)
{
    fprintf(out, "usage: ferryd [--config FILE] [--KEY VALUE]...\n\n"
                 "ferryd, the daemon of the ferry RPC engine. Every setting "
                 "is a key of the\n[ferryd] section of the config file and "
                 "a flag; flags override the file.\n\n"
                 "  --config FILE\n"
                 "        read settings from an INI file\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        char flag[64];
        size_t n = strlen(config_keys[i].name);
        for (size_t j = 0; j <= n; j++) {
            flag[j] =
                config_keys[i].name[j] == '_' ? '-' : config_keys[i].name[j];
        }
        fprintf(out, "  --%s %s\n        %s; default %s\n", flag,
                config_metavar(&config_keys[i]), config_keys[i].help,
                config_keys[i].dflt);
    }
    fprintf(out, "  --help\n        print this help\n"
                 "  --version\n        print the version\n\n"
                 "Every key is documented in docs/config.md.\n");
}
