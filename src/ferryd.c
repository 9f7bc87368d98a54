/* SPDX-License-Identifier: MIT */
/*
 * ferryd.c - main() of the ferry daemon: settings, the data folder, the
 * listeners, signals, and the one event loop that serves everything.
 *
 * SIGHUP (or `ferry admin reload`) re-reads the configuration: the file
 * and then the same flags, exactly as at start, so flags still win. A
 * configuration that does not parse or check is refused with its line
 * named, and the running one stays; else every changed key takes effect,
 * except those only a restart can change (they are logged).
 *
 * SIGTERM or SIGINT starts a graceful stop: listeners close (HTTP too),
 * new requests get SHUTTING_DOWN, requests in flight get grace_ms to
 * finish, then every connection is flushed and closed and the process
 * exits 0. A second signal stops at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "broker/broker.h"
#include "cluster/cluster.h"
#include "servants/servants.h"
#include "core/addr.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/mem.h"
#include "core/notify.h"
#include "core/paths.h"
#include "http/route.h"
#include "http/server.h"
#include "servants/cache_service.h"
#include "servants/memcache.h"

/* Everything main() owns, so signal callbacks can reach it. */
struct ferryd {
    struct config cfg;         /* settings */
    struct loop loop;          /* the event loop */
    struct broker broker;      /* the request path */
    struct servants servants;  /* the store and the services on it */
    uv_signal_t sigterm;       /* graceful stop */
    uv_signal_t sigint;        /* graceful stop */
    uv_signal_t sighup;        /* reload */
    uv_timer_t watchdog;       /* WATCHDOG=1 to systemd, when asked */
    struct route_table routes; /* built at start, until the HTTP server
                                  takes them */
    int argc;                  /* the command line, read again on reload */
    char **argv;               /* borrowed from main() */
    int signals;               /* stop signals seen */
    bool closed;               /* on_empty closed the handles */
    struct memcache_face *memcache; /* memcache_listen, or NULL */
    struct cluster *cluster;   /* cluster_etcd set, else NULL */
};

/* Called when the binary side, then again when the HTTP side, has no
 * connection left; the second time both are empty. */
static void
ferryd_on_empty(struct loop *l)
{
    struct ferryd *d = container_of(l, struct ferryd, loop);

    if (l->n_alive > 0 || d->closed ||
        (l->http != NULL && http_server_n_conns(l->http) > 0)) {
        return;
    }
    d->closed = true;
    /* etcd's watches and the cluster's timers would keep the loop up. */
    cluster_quiesce(d->cluster);
    /* The broker has stopped: the store's last commits land now, their
     * answers find no caller, and its handles close with the others. */
    servants_close(&d->servants);
    if (l->http != NULL) {
        http_server_close(l->http);
    }
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->watchdog, NULL);
    uv_close((uv_handle_t *)&l->timer, NULL);
    uv_close((uv_handle_t *)&l->prepare, NULL);
    uv_close((uv_handle_t *)&l->idle, NULL);
}

static void
ferryd_on_stopped(struct broker *b)
{
    struct loop *l = b->loop;

    l->stopping = true;
    loop_close_conns(l);
    if (l->http != NULL) {
        http_server_shutdown(l->http);
    }
    if (l->n_alive == 0) {
        ferryd_on_empty(l);
    }
}

static void
ferryd_left(void *arg)
{
    struct ferryd *d = arg;

    if (d->loop.http != NULL) {
        http_server_stop_accepting(d->loop.http);
    }
    broker_shutdown(&d->broker);
}

/* The first SIGTERM, SIGINT or ferry admin leave. */
static void
ferryd_stop(struct ferryd *d)
{
    notify_stopping();
    /* A node leaves its cluster first (handing its vbuckets over), so the
     * others stop sending it work, then finishes what it holds. HTTP
     * stays open meanwhile: /v1/cluster shows the handovers. */
    cluster_leave(d->cluster, ferryd_left, d);
}

static void
ferryd_on_leave(struct broker *b, const char *who)
{
    struct ferryd *d = container_of(b, struct ferryd, broker);

    d->signals++;
    log_info("leave asked by an operator (%s), stopping", who);
    ferryd_stop(d);
}

static void
ferryd_signal_cb(uv_signal_t *h, int signum)
{
    struct ferryd *d = h->data;

    d->signals++;
    if (d->signals == 1) {
        log_info("received %s, stopping",
                 signum == SIGTERM ? "SIGTERM" : "SIGINT");
        ferryd_stop(d);
        return;
    }
    log_warn("second signal, stopping at once");
    uv_stop(&d->loop.uv);
}

/*
 * Builds the route table of cfg into t. The routes are parsed here, not by
 * the config reader, so a bad one is named here with its file line.
 */
static ferry_err
ferryd_routes(const struct config *cfg, struct route_table *t, char *err,
              size_t err_size)
{
    char msg[CONFIG_ERR_SIZE];
    size_t bad = 0;
    ferry_err e =
        route_table_init(t, cfg->routes, cfg->n_routes, &bad, msg, sizeof(msg));

    if (e == FERRY_EINVALID_ARGUMENT && cfg->route_lines[bad] > 0) {
        snprintf(err, err_size, "config '%s' line %d: %s", cfg->config_file,
                 cfg->route_lines[bad], msg);
    } else if (e == FERRY_EINVALID_ARGUMENT) {
        snprintf(err, err_size, "--%s", msg);
    } else if (e != FERRY_OK) {
        snprintf(err, err_size, "%s", msg);
    }
    return e;
}

/* Joins names into buf as "a, b, c" ("none" when there are none). */
static const char *
ferryd_join(const char *const *names, size_t n, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        int w =
            snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
    return n == 0 ? "none" : buf;
}

/* broker->on_reload: see the comment at the top. */
static ferry_err
ferryd_reload(struct broker *b, struct config_changes *ch, char *err,
              size_t err_size)
{
    struct ferryd *d = container_of(b, struct ferryd, broker);
    struct route_table routes = {0};
    struct config next;
    enum config_action action;
    char list[1024];
    ferry_err e;

    if (config_init(&next) != FERRY_OK) {
        snprintf(err, err_size, "out of memory");
        return FERRY_ENOMEM;
    }
    notify_reloading();
    e = config_parse_args(&next, d->argc, d->argv, &action, err, err_size);
    if (e == FERRY_OK && d->loop.http != NULL) {
        e = ferryd_routes(&next, &routes, err, err_size);
    }
    if (e != FERRY_OK) {
        log_error("reload refused, running configuration kept: %s", err);
        config_release(&next);
        notify_ready("reload refused, running configuration kept");
        return e;
    }
    config_apply(&d->cfg, &next, ch);
    config_release(&next);
    log_set_level(d->cfg.log_level);
    if (d->loop.http != NULL) {
        http_server_reload(d->loop.http, &routes);
    }
    route_table_release(&routes);
    log_info("reloaded '%s': changed %s",
             d->cfg.config_file ? d->cfg.config_file : "(no file)",
             ferryd_join(ch->applied, ch->n_applied, list, sizeof(list)));
    if (ch->n_kept > 0) {
        log_warn("reload: %s changed but need a restart; old values kept",
                 ferryd_join(ch->kept, ch->n_kept, list, sizeof(list)));
    }
    notify_ready("reloaded");
    return FERRY_OK;
}

static void
ferryd_sighup_cb(uv_signal_t *h, int signum)
{
    struct ferryd *d = h->data;
    struct config_changes ch;
    char err[CONFIG_ERR_SIZE];

    log_info("received SIGHUP, reloading");
    (void)ferryd_reload(&d->broker, &ch, err, sizeof(err));
}

/*
 * Listens on every configured address; with none, on ADDR_DEFAULT and the
 * socket in the runtime folder, made here. The folder of every unix socket
 * must be safe (core/paths.h): another user who may write it could put
 * their socket in place of ours and read the tokens clients send.
 */
static int
ferryd_listen_all(struct ferryd *d)
{
    char dir[PATHS_MAX + 1], sock[PATHS_MAX + 32], err[PATHS_ERR_SIZE];

    if (d->cfg.n_listen == 0) {
        if (config_run_dir(&d->cfg, dir, sizeof(dir)) != FERRY_OK) {
            log_error("run dir: name too long");
            return -1;
        }
        if (paths_make_dir(dir, err, sizeof(err)) != FERRY_OK) {
            log_error("run dir %s", err);
            return -1;
        }
        snprintf(sock, sizeof(sock), "unix:%s/" PATHS_SOCKET, dir);
        if (loop_listen(&d->loop, ADDR_DEFAULT) != FERRY_OK ||
            loop_listen(&d->loop, sock) != FERRY_OK) {
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < d->cfg.n_listen; i++) {
        const char *text = d->cfg.listen[i];
        if (strncmp(text, "unix:", 5) == 0 &&
            paths_check_socket(text + 5, (uid_t)-1, err, sizeof(err)) !=
                FERRY_OK) {
            log_error("listen '%s': %s", text, err);
            return -1;
        }
        if (loop_listen(&d->loop, text) != FERRY_OK) {
            return -1;
        }
    }
    return 0;
}

/* Whether text is an address reachable beyond this host. */
static bool
ferryd_is_open(const char *text)
{
    struct addr a;

    return addr_parse(text, &a) == FERRY_OK && !addr_is_local(&a);
}

/*
 * Warns about listeners anyone on the network can use: a binary listener
 * beyond loopback with no token set at all, and an HTTP listener beyond
 * loopback with no admin_token (its admin endpoints then show internals
 * to every caller: core/access.h).
 */
static void
ferryd_warn_open(const struct config *cfg)
{
    bool tokens = config_token_is_set(cfg->caller_token) ||
                  config_token_is_set(cfg->worker_token) ||
                  config_token_is_set(cfg->admin_token);

    for (size_t i = 0; i < cfg->n_listen && !tokens; i++) {
        if (ferryd_is_open(cfg->listen[i])) {
            log_warn("listening on '%s' beyond loopback with no access "
                     "tokens set",
                     cfg->listen[i]);
        }
    }
    if (cfg->memcache_listen != NULL && ferryd_is_open(cfg->memcache_listen)) {
        log_warn("memcache_listen '%s' beyond loopback: the memcached face "
                 "has no access token, anyone who reaches it reads and "
                 "writes the cache",
                 cfg->memcache_listen);
    }
    if (cfg->http != NULL && !config_token_is_set(cfg->admin_token) &&
        ferryd_is_open(cfg->http)) {
        log_warn("http listening on '%s' beyond loopback with no "
                 "admin_token set: the admin endpoints are open to %s",
                 cfg->http,
                 config_token_is_set(cfg->caller_token)
                     ? "every holder of the caller token"
                     : "anyone");
    }
}

static void
ferryd_watchdog_cb(uv_timer_t *t)
{
    notify_watchdog();
}

/* With WatchdogSec= in the unit, the loop proves it turns: a loop stalled
 * for longer gets ferryd killed and restarted by systemd. */
static void
ferryd_start_watchdog(struct ferryd *d)
{
    uint64_t ms = notify_watchdog_ms();

    if (ms > 0) {
        uv_timer_start(&d->watchdog, ferryd_watchdog_cb, ms, ms);
        uv_unref((uv_handle_t *)&d->watchdog);
    }
}

int
main(int argc, char **argv)
{
    static struct ferryd d;
    char err[CONFIG_ERR_SIZE];
    enum config_action action;
    int status = 0;

    if (config_init(&d.cfg) != FERRY_OK) {
        fprintf(stderr, "ferryd: out of memory\n");
        return 1;
    }
    if (config_parse_args(&d.cfg, argc, argv, &action, err, sizeof(err)) !=
        FERRY_OK) {
        fprintf(stderr, "ferryd: %s\n", err);
        config_release(&d.cfg);
        return 2;
    }
    if (action == CONFIG_HELP) {
        config_print_help(stdout);
        config_release(&d.cfg);
        return 0;
    }
    if (action == CONFIG_VERSION) {
        printf("ferryd %s (protocol %d)\n", FERRYD_VERSION,
               FERRY_PROTOCOL_VERSION);
        config_release(&d.cfg);
        return 0;
    }
    /* A bad route is a configuration error, found before starting. */
    if (ferryd_routes(&d.cfg, &d.routes, err, sizeof(err)) != FERRY_OK) {
        fprintf(stderr, "ferryd: %s\n", err);
        config_release(&d.cfg);
        return 2;
    }
    log_set_level(d.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    mem_tune();
    if (paths_make_dir(d.cfg.data_dir, err, sizeof(err)) != FERRY_OK) {
        log_error("data dir %s", err);
        route_table_release(&d.routes);
        config_release(&d.cfg);
        return 1;
    }
    if (loop_init(&d.loop, &d.cfg) != FERRY_OK) {
        log_error("event loop: cannot start");
        route_table_release(&d.routes);
        config_release(&d.cfg);
        return 1;
    }
    d.loop.on_empty = ferryd_on_empty;
    if (broker_init(&d.broker, &d.loop) != FERRY_OK) {
        log_error("broker: out of memory");
        status = 1;
        goto out_loop;
    }
    d.broker.on_stopped = ferryd_on_stopped;
    d.broker.on_reload = ferryd_reload;
    d.broker.on_leave = ferryd_on_leave;
    if (servants_open(&d.servants, &d.broker) != FERRY_OK) {
        fprintf(stderr,
                "ferryd: the store in %s/store cannot open (see the log "
                "above); stopping\n",
                d.cfg.data_dir);
        status = 1;
        goto out_broker;
    }
    d.argc = argc;
    d.argv = argv;
    uv_signal_init(&d.loop.uv, &d.sigterm);
    uv_signal_init(&d.loop.uv, &d.sigint);
    uv_signal_init(&d.loop.uv, &d.sighup);
    uv_timer_init(&d.loop.uv, &d.watchdog);
    d.sigterm.data = &d;
    d.sigint.data = &d;
    d.sighup.data = &d;
    uv_signal_start(&d.sigterm, ferryd_signal_cb, SIGTERM);
    uv_signal_start(&d.sigint, ferryd_signal_cb, SIGINT);
    uv_signal_start(&d.sighup, ferryd_sighup_cb, SIGHUP);
    if (ferryd_listen_all(&d) != 0) {
        status = 1;
        goto out_broker;
    }
    if (d.cfg.memcache_listen != NULL && d.cfg.memcache_listen[0] != '\0' &&
        strcmp(d.cfg.memcache_listen, "off") != 0 &&
        strcmp(d.cfg.memcache_listen, "none") != 0) {
        char perr[PATHS_ERR_SIZE];
        if (strncmp(d.cfg.memcache_listen, "unix:", 5) == 0 &&
            paths_check_socket(d.cfg.memcache_listen + 5, (uid_t)-1, perr,
                               sizeof(perr)) != FERRY_OK) {
            log_error("memcache_listen '%s': %s", d.cfg.memcache_listen, perr);
            status = 1;
            goto out_broker;
        }
        /* The face serves ferry.cache's own cache. */
        if (memcache_open(&d.memcache, &d.loop, d.servants.cache,
                          d.cfg.cache_item_max,
                          d.cfg.memcache_listen) != FERRY_OK) {
            log_error("memcache_listen '%s': cannot start",
                      d.cfg.memcache_listen);
            status = 1;
            goto out_broker;
        }
    }
    if (d.cfg.http != NULL) {
        struct http_server *http;
        ferry_err e = http_server_new(&d.loop, &d.routes, &http);
        if (e != FERRY_OK) {
            status = 1;
            goto out_broker;
        }
    }
    if (cluster_start(&d.broker, &d.servants, &d.cluster) != FERRY_OK) {
        log_error("cluster: cannot start (see above)");
        status = 1;
        goto out_broker;
    }
    ferryd_warn_open(&d.cfg);
    ferryd_start_watchdog(&d);
    log_info("ready");
    notify_ready("serving");
    uv_run(&d.loop.uv, UV_RUN_DEFAULT);
    log_info("stopped");

out_broker:
    loop_close_listeners(&d.loop);
    if (d.loop.http != NULL) {
        http_server_drop_all(d.loop.http);
    }
    /* Whatever is still open (a second signal) closes now. */
    d.loop.stopping = false;
    loop_destroy_conns(&d.loop);
    if (d.servants.store != NULL) {
        /* Stopped early (an error at start, a second signal). */
        servants_close(&d.servants);
        uv_run(&d.loop.uv, UV_RUN_NOWAIT);
    }
    cluster_stop(d.cluster);
    broker_release(&d.broker);
    memcache_close(d.memcache);
out_loop:
    loop_release(&d.loop);
    http_server_free(d.loop.http);
    route_table_release(&d.routes);
    config_release(&d.cfg);
    return status;
}
