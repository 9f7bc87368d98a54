/* SPDX-License-Identifier: MIT */
/*
 * test_etcd.c - the etcd client (cluster/etcd.c) and membership on it
 * (cluster/members.c) against a real etcd on loopback.
 *
 * Each test starts its own etcd (fork/exec, a mkdtemp data dir, free
 * ports on 127.0.0.1), waits for it to answer, and kills it by PID in
 * teardown. Everything runs on a real struct loop; every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "cluster/members.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"

#define MAX_SEEN 64

struct fixture {
    struct config cfg;
    struct loop loop;
    uv_timer_t tick;  /* keeps UV_RUN_ONCE from blocking for long */
    char dir[64];     /* etcd's data dir and log */
    pid_t pid;        /* etcd, or 0 */
    int cport, pport; /* client and peer ports */
    char ep[64];      /* "http://127.0.0.1:<cport>" */
    char name[32];    /* etcd's --name */
    struct etcd *e;   /* the client under test, or NULL */
    /* What callbacks saw. */
    int calls;     /* callbacks run */
    ferry_err err; /* of the last */
    char msg[ETCD_MSG_SIZE];
    struct etcd_result r;    /* scalars of the last result */
    char value[64];          /* first kv's value of the last range */
    size_t n_kvs;            /* kvs of the last range */
    bool created;            /* watch created */
    int n_events;            /* watch events seen */
    int types[MAX_SEEN];     /* their types */
    char keys[MAX_SEEN][32]; /* their keys */
    uint64_t last_rev;       /* mod_revision of the last event */
    bool ended;              /* watch ended */
    ferry_err end_err;       /* its error */
    uint64_t compact;        /* its compact_revision */
    /* Membership. */
    int changed;      /* changed hooks */
    int fenced_calls; /* fenced hooks */
    bool fenced;      /* the last fenced state reported */
    uint32_t node_id; /* the last node id leased */
    bool left;        /* members_leave's done ran */
};

static void
tick_cb(uv_timer_t *t)
{
}

static int
free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static bool
port_open(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

/* Runs loop turns until done(fx) holds; false after ms. */
static bool
run_until(struct fixture *fx, bool (*done)(struct fixture *), uint64_t ms)
{
    uint64_t end = uv_hrtime() + ms * 1000000;

    while (!done(fx)) {
        if (uv_hrtime() > end) {
            return false;
        }
        uv_run(&fx->loop.uv, UV_RUN_ONCE);
    }
    return true;
}

static bool
never(struct fixture *fx)
{
    return false;
}

static void
run_for(struct fixture *fx, uint64_t ms)
{
    run_until(fx, never, ms);
}

static void
etcd_spawn(struct fixture *fx)
{
    char data[96], lc[64], lp[64], ic[128], logf[96];
    pid_t pid;

    snprintf(data, sizeof(data), "%s/data", fx->dir);
    snprintf(logf, sizeof(logf), "%s/etcd.log", fx->dir);
    snprintf(lc, sizeof(lc), "http://127.0.0.1:%d", fx->cport);
    snprintf(lp, sizeof(lp), "http://127.0.0.1:%d", fx->pport);
    snprintf(ic, sizeof(ic), "%s=%s", fx->name, lp);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/usr/bin/etcd", "etcd", "--name", fx->name, "--data-dir", data,
              "--listen-client-urls", lc, "--advertise-client-urls", lc,
              "--listen-peer-urls", lp, "--initial-advertise-peer-urls", lp,
              "--initial-cluster", ic, "--initial-cluster-state", "new",
              "--logger", "zap", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    fx->pid = pid;
}

static void
etcd_kill(struct fixture *fx)
{
    if (fx->pid > 0) {
        kill(fx->pid, SIGCONT);
        kill(fx->pid, SIGKILL);
        waitpid(fx->pid, NULL, 0);
        fx->pid = 0;
    }
}

static void
range_cb(void *ud, ferry_err err, const char *msg, const struct etcd_result *r)
{
    struct fixture *fx = ud;

    fx->calls++;
    fx->err = err;
    fx->msg[0] = '\0';
    if (msg != NULL) {
        snprintf(fx->msg, sizeof(fx->msg), "%s", msg);
    }
    if (r != NULL) {
        fx->r = *r;
        fx->r.kvs = NULL;
        fx->n_kvs = r->n_kvs;
        fx->value[0] = '\0';
        if (r->n_kvs > 0) {
            snprintf(fx->value, sizeof(fx->value), "%s", r->kvs[0].value);
        }
    }
}

static int want_calls;

static bool
calls_done(struct fixture *fx)
{
    return fx->calls >= want_calls;
}

/* Waits for the next callback; true when it came. */
static bool
wait_call(struct fixture *fx, uint64_t ms)
{
    want_calls = fx->calls + 1;
    return run_until(fx, calls_done, ms);
}

/* Waits (bounded) until etcd answers a range on our client. */
static void
etcd_wait_ready(struct fixture *fx)
{
    uint64_t end = uv_hrtime() + UINT64_C(15000000000);

    while (uv_hrtime() < end) {
        if (port_open(fx->cport)) {
            assert_non_null(etcd_range(fx->e, "/", 1, true, range_cb, fx));
            assert_true(wait_call(fx, 3000));
            if (fx->err == FERRY_OK) {
                return;
            }
        }
        run_for(fx, 100);
    }
    fail_msg("etcd did not answer on port %d", fx->cport);
}

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    log_set_level(getenv("FERRY_TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
    assert_int_equal(config_init(&fx->cfg), FERRY_OK);
    assert_int_equal(loop_init(&fx->loop, &fx->cfg), FERRY_OK);
    uv_timer_init(&fx->loop.uv, &fx->tick);
    uv_timer_start(&fx->tick, tick_cb, 10, 10);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ferry-test-etcd-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->cport = free_port();
    fx->pport = free_port();
    while (fx->pport == fx->cport) {
        fx->pport = free_port();
    }
    snprintf(fx->ep, sizeof(fx->ep), "http://127.0.0.1:%d", fx->cport);
    snprintf(fx->name, sizeof(fx->name), "t%d-%d", (int)getpid(), fx->cport);
    etcd_spawn(fx);
    fx->e = etcd_new(&fx->loop, fx->ep, 1000);
    assert_non_null(fx->e);
    etcd_wait_ready(fx);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[160];

    etcd_free(fx->e);
    etcd_kill(fx);
    /* The polls' close callbacks, then every handle. */
    uv_run(&fx->loop.uv, UV_RUN_NOWAIT);
    loop_release(&fx->loop);
    config_release(&fx->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* Grant, keepalive, put, range, claim and its conflict, delete, revoke. */
static void
test_kv_and_lease(void **state)
{
    struct fixture *fx = *state;
    int64_t id;

    assert_non_null(etcd_lease_grant(fx->e, 5, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_true(fx->r.id != 0);
    assert_int_equal(fx->r.ttl, 5);
    id = fx->r.id;

    assert_non_null(etcd_lease_keepalive(fx->e, id, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_int_equal(fx->r.id, id);
    assert_int_equal(fx->r.ttl, 5);

    assert_non_null(etcd_put(fx->e, "/t/a", 4, "one", 3, id, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_true(fx->r.revision > 1);
    assert_non_null(etcd_put(fx->e, "/t/b", 4, "two", 3, 0, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_non_null(etcd_put(fx->e, "/u", 2, "x", 1, 0, range_cb, fx));
    assert_true(wait_call(fx, 3000));

    assert_non_null(etcd_range(fx->e, "/t/", 3, true, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_int_equal(fx->n_kvs, 2);
    assert_string_equal(fx->value, "one");
    assert_non_null(etcd_range(fx->e, "/t/b", 4, false, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->n_kvs, 1);
    assert_string_equal(fx->value, "two");
    assert_non_null(etcd_range(fx->e, "/none", 5, false, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_int_equal(fx->n_kvs, 0);

    assert_non_null(etcd_claim(fx->e, "/t/id/1", 7, "a", 1, id, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_true(fx->r.succeeded);
    assert_non_null(etcd_claim(fx->e, "/t/id/1", 7, "b", 1, 0, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_false(fx->r.succeeded);
    assert_non_null(etcd_range(fx->e, "/t/id/1", 7, false, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_string_equal(fx->value, "a");

    assert_non_null(etcd_delete(fx->e, "/t/b", 4, false, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_int_equal(fx->r.deleted, 1);

    /* Revoking drops the leased keys; a keepalive then has no TTL. */
    assert_non_null(etcd_lease_revoke(fx->e, id, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_non_null(etcd_lease_keepalive(fx->e, id, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_int_equal(fx->r.ttl, 0);
    assert_non_null(etcd_range(fx->e, "/t/", 3, true, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->n_kvs, 0);
}

static void
w_created(void *ud)
{
    struct fixture *fx = ud;

    fx->created = true;
}

static void
w_event(void *ud, const struct etcd_event *ev)
{
    struct fixture *fx = ud;

    if (fx->n_events < MAX_SEEN) {
        fx->types[fx->n_events] = (int)ev->type;
        snprintf(fx->keys[fx->n_events], sizeof(fx->keys[0]), "%s", ev->kv.key);
    }
    fx->n_events++;
    fx->last_rev = ev->kv.mod_revision;
}

static void
w_ended(void *ud, ferry_err err, const char *msg, uint64_t compact)
{
    struct fixture *fx = ud;

    fx->ended = true;
    fx->end_err = err;
    fx->compact = compact;
    snprintf(fx->msg, sizeof(fx->msg), "%s", msg ? msg : "");
}

static const struct etcd_watch_hooks w_hooks = {w_created, w_event, w_ended};

static bool
is_created(struct fixture *fx)
{
    return fx->created;
}

static bool
is_ended(struct fixture *fx)
{
    return fx->ended;
}

static int want_events;

static bool
events_seen(struct fixture *fx)
{
    return fx->n_events >= want_events;
}

static void
put(struct fixture *fx, const char *key, const char *value)
{
    assert_non_null(etcd_put(fx->e, key, strlen(key), value, strlen(value), 0,
                             range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
}

static void
del(struct fixture *fx, const char *key)
{
    assert_non_null(etcd_delete(fx->e, key, strlen(key), false, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
}

/* Events in order; after etcd restarts, resuming from the last revision
 * seen misses nothing. */
static void
test_watch_and_resume(void **state)
{
    struct fixture *fx = *state;
    struct etcd_call *w;
    uint64_t end;

    w = etcd_watch(fx->e, "/w/", 3, 0, &w_hooks, fx);
    assert_non_null(w);
    assert_true(run_until(fx, is_created, 3000));
    put(fx, "/w/a", "1");
    put(fx, "/w/b", "2");
    del(fx, "/w/a");
    put(fx, "/other", "x");
    want_events = 3;
    assert_true(run_until(fx, events_seen, 3000));
    run_for(fx, 100);
    assert_int_equal(fx->n_events, 3);
    assert_int_equal(fx->types[0], ETCD_EVENT_PUT);
    assert_string_equal(fx->keys[0], "/w/a");
    assert_int_equal(fx->types[1], ETCD_EVENT_PUT);
    assert_string_equal(fx->keys[1], "/w/b");
    assert_int_equal(fx->types[2], ETCD_EVENT_DELETE);
    assert_string_equal(fx->keys[2], "/w/a");

    /* etcd dies: the stream ends with an error. */
    etcd_kill(fx);
    assert_true(run_until(fx, is_ended, 5000));
    assert_int_not_equal(fx->end_err, FERRY_OK);
    assert_int_not_equal(fx->end_err, FERRY_ECANCELLED);

    /* Back on the same data dir and port. */
    etcd_spawn(fx);
    etcd_wait_ready(fx);
    put(fx, "/w/c", "3");
    fx->ended = false;
    fx->created = false;
    w = etcd_watch(fx->e, "/w/", 3, fx->last_rev + 1, &w_hooks, fx);
    assert_non_null(w);
    want_events = 4;
    assert_true(run_until(fx, events_seen, 5000));
    assert_int_equal(fx->types[3], ETCD_EVENT_PUT);
    assert_string_equal(fx->keys[3], "/w/c");
    /* A cancelled watch says nothing more. */
    etcd_cancel(w);
    put(fx, "/w/d", "4");
    end = uv_hrtime() + 200000000;
    while (uv_hrtime() < end) {
        uv_run(&fx->loop.uv, UV_RUN_ONCE);
    }
    assert_int_equal(fx->n_events, 4);
    assert_false(fx->ended);
}

/* A watch from a compacted revision is cancelled with compact_revision. */
static void
test_watch_compacted(void **state)
{
    struct fixture *fx = *state;
    char cmd[256];
    uint64_t rev;

    put(fx, "/c/a", "1");
    put(fx, "/c/a", "2");
    put(fx, "/c/a", "3");
    rev = fx->r.revision;
    snprintf(cmd, sizeof(cmd),
             "timeout 10 etcdctl --endpoints=%s compact %llu >/dev/null",
             fx->ep, (unsigned long long)rev);
    assert_int_equal(system(cmd), 0);
    assert_non_null(etcd_watch(fx->e, "/c/", 3, 2, &w_hooks, fx));
    assert_true(run_until(fx, is_ended, 3000));
    assert_int_equal(fx->end_err, FERRY_ECANCELLED);
    assert_int_equal(fx->compact, rev);
}

/* Answers past the bounds are errors, not crashes. */
static void
test_bounds(void **state)
{
    struct fixture *fx = *state;
    size_t big = 800 * 1024;
    char *v = malloc(big);
    struct etcd_splitter s;
    char msg[ETCD_MSG_SIZE];
    uint64_t compact;
    size_t used;
    char *obj;

    assert_non_null(v);
    memset(v, 'v', big);
    assert_non_null(etcd_put(fx->e, "/big/1", 6, v, big, 0, range_cb, fx));
    assert_true(wait_call(fx, 5000));
    assert_int_equal(fx->err, FERRY_OK);
    /* Its base64 alone, about 1.1 MB, is past ETCD_RESPONSE_MAX. */
    assert_non_null(etcd_range(fx->e, "/big/", 5, true, range_cb, fx));
    assert_true(wait_call(fx, 5000));
    assert_int_equal(fx->err, FERRY_EPROTO);
    assert_non_null(strstr(fx->msg, "bound"));
    /* A small one still reads. */
    put(fx, "/big/s", "small");
    assert_non_null(etcd_range(fx->e, "/big/s", 6, false, range_cb, fx));
    assert_true(wait_call(fx, 5000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_int_equal(fx->n_kvs, 1);
    /* A watch object past the cap ends the watch with an error. */
    assert_non_null(etcd_watch(fx->e, "/big/", 5, 1, &w_hooks, fx));
    assert_true(run_until(fx, is_ended, 5000));
    assert_int_equal(fx->end_err, FERRY_EPROTO);
    free(v);

    /* The splitter and the decoder alone. */
    obj = malloc(ETCD_RESPONSE_MAX + 16);
    assert_non_null(obj);
    memset(obj, ' ', ETCD_RESPONSE_MAX + 16);
    obj[3] = '{';
    etcd_splitter_init(&s, ETCD_RESPONSE_MAX);
    assert_int_equal(etcd_split_next(&s, obj, ETCD_RESPONSE_MAX + 16, &used),
                     ETCD_SPLIT_TOO_BIG);
    free(obj);
    etcd_splitter_init(&s, 100);
    assert_int_equal(etcd_split_next(&s, " x", 2, &used), ETCD_SPLIT_BAD);
    etcd_splitter_init(&s, 100);
    assert_int_equal(etcd_split_next(&s, "{\"a\":\"}\"", 8, &used),
                     ETCD_SPLIT_MORE);
    assert_int_equal(etcd_split_next(&s, "{\"a\":\"}\"}{", 10, &used),
                     ETCD_SPLIT_OBJECT);
    assert_int_equal(used, 9);
    assert_int_equal(etcd_watch_decode(
                         "{\"result\":{\"events\":[{\"kv\":{\"key\":\"!\"}}]}}",
                         43, &w_hooks, fx, &compact, msg),
                     FERRY_EPROTO);
    assert_int_equal(etcd_watch_decode("[1]", 3, &w_hooks, fx, &compact, msg),
                     FERRY_EPROTO);
    assert_int_equal(etcd_watch_decode("{\"error\":{\"message\":\"boom\"}}", 28,
                                       &w_hooks, fx, &compact, msg),
                     FERRY_EPROTO);
    assert_non_null(strstr(msg, "boom"));
}

/* A dead endpoint first: calls move on to the live one. */
static void
test_endpoints(void **state)
{
    struct fixture *fx = *state;
    char eps[160];
    struct etcd *e;

    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d, %s", free_port(), fx->ep);
    e = etcd_new(&fx->loop, eps, 1000);
    assert_non_null(e);
    assert_non_null(etcd_range(e, "/", 1, true, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_OK);
    assert_string_equal(etcd_endpoint(e), fx->ep);
    etcd_free(e);
    assert_null(etcd_new(&fx->loop, "127.0.0.1:2379", 1000));
    assert_null(etcd_new(&fx->loop, "", 1000));
    /* Nothing there at all: a connection error. */
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", free_port());
    e = etcd_new(&fx->loop, eps, 500);
    assert_non_null(etcd_lease_grant(e, 5, range_cb, fx));
    assert_true(wait_call(fx, 3000));
    assert_int_equal(fx->err, FERRY_ECONNECTION);
    etcd_free(e);
}

static void
free_in_cb(void *ud, ferry_err err, const char *msg,
           const struct etcd_result *r)
{
    struct fixture *fx = ud;

    fx->calls++;
    etcd_free(fx->e);
    fx->e = NULL;
}

/* Freeing with calls in flight, or from inside a callback, is clean
 * (ASan would say otherwise) and calls nothing back. */
static void
test_free_mid_call(void **state)
{
    struct fixture *fx = *state;
    int before;

    for (int i = 0; i < 5; i++) {
        assert_non_null(etcd_range(fx->e, "/", 1, true, range_cb, fx));
    }
    assert_non_null(etcd_watch(fx->e, "/", 1, 0, &w_hooks, fx));
    run_for(fx, 2); /* some are mid-transfer */
    before = fx->calls;
    etcd_free(fx->e);
    fx->e = etcd_new(&fx->loop, fx->ep, 1000);
    run_for(fx, 200);
    assert_int_equal(fx->calls, before);
    assert_false(fx->ended);

    /* Several done in one turn; the first callback frees the client. */
    assert_non_null(etcd_watch(fx->e, "/", 1, 0, &w_hooks, fx));
    for (int i = 0; i < 5; i++) {
        assert_non_null(etcd_range(fx->e, "/", 1, true, free_in_cb, fx));
    }
    assert_true(wait_call(fx, 3000));
    run_for(fx, 200);
    assert_int_equal(fx->calls, before + 1);
    assert_null(fx->e);
}

/* Membership */

static void
m_changed(void *ud, bool membership)
{
    struct fixture *fx = ud;

    fx->changed++;
}

static void
m_fenced(void *ud, bool fenced)
{
    struct fixture *fx = ud;

    fx->fenced_calls++;
    fx->fenced = fenced;
}

static void
m_node_id(void *ud, uint32_t id)
{
    struct fixture *fx = ud;

    fx->node_id = id;
}

static const struct members_hooks m_hooks = {m_changed, m_fenced, m_node_id};

/* Two instances: a and b, with their own hook records. */
struct pair {
    struct fixture *fx;
    struct fixture ha, hb; /* hook records only */
    struct members *a, *b;
};

static struct pair pr;

static struct members *
member(struct fixture *fx, struct fixture *rec, const char *name,
       const char *addr, int preferred)
{
    struct members_config cfg = {
        .endpoints = fx->ep,
        .cluster = "test",
        .name = name,
        .addr = addr,
        .http = NULL,
        .lease_ms = 2000,
        .preferred_node_id = preferred,
    };

    return members_start(&fx->loop, &cfg, &m_hooks, rec);
}

static size_t
n_members(const struct members *m)
{
    size_t n;

    members_list(m, &n);
    return n;
}

static bool
both_see_both(struct fixture *fx)
{
    return n_members(pr.a) == 2 && n_members(pr.b) == 2;
}

static bool
a_sees_services(struct fixture *fx)
{
    size_t n;
    const struct member *ms = members_list(pr.a, &n);

    return n == 2 && strcmp(ms[1].name, "b") == 0 &&
           json_object_get(ms[1].services, "fib") != NULL;
}

static bool
a_alone(struct fixture *fx)
{
    return n_members(pr.a) == 1;
}

static bool
a_fenced(struct fixture *fx)
{
    return members_fenced(pr.a) && pr.ha.fenced;
}

static bool
a_unfenced(struct fixture *fx)
{
    return !members_fenced(pr.a) && !pr.ha.fenced;
}

static bool
b_unfenced(struct fixture *fx)
{
    return !members_fenced(pr.b);
}

static bool
b_fenced(struct fixture *fx)
{
    return members_fenced(pr.b) && pr.hb.fenced;
}

static bool
left_done(struct fixture *fx)
{
    return pr.hb.left;
}

static void
on_left(void *ud)
{
    struct fixture *rec = ud;

    rec->left = true;
}

static void
test_members(void **state)
{
    struct fixture *fx = *state;
    const struct member *ms;
    json_t *svc, *d;
    size_t n;
    uint64_t t0, ms_taken;

    memset(&pr, 0, sizeof(pr));
    pr.fx = fx;
    pr.a = member(fx, &pr.ha, "a", "127.0.0.1:7101", 5);
    pr.b = member(fx, &pr.hb, "b", "127.0.0.1:7102", 5);
    assert_non_null(pr.a);
    assert_non_null(pr.b);
    assert_true(members_fenced(pr.a));
    assert_true(run_until(fx, both_see_both, 5000));
    assert_true(run_until(fx, b_unfenced, 3000));
    assert_false(members_fenced(pr.a));
    assert_true(pr.ha.changed > 0);
    ms = members_list(pr.a, &n);
    assert_string_equal(ms[0].name, "a");
    assert_string_equal(ms[1].name, "b");
    assert_string_equal(ms[1].addr, "127.0.0.1:7102");
    assert_true(ms[0].node_id != ms[1].node_id);
    assert_true(ms[0].node_id == 5 || ms[1].node_id == 5);
    assert_true(pr.ha.node_id != pr.hb.node_id);
    assert_true(members_epoch(pr.a) > 0);

    /* A second "a" in another process is refused, not stolen. */
    {
        struct fixture rec;
        struct members *dup;
        memset(&rec, 0, sizeof(rec));
        dup = member(fx, &rec, "a", "127.0.0.1:7199", -1);
        run_for(fx, 700);
        assert_true(members_fenced(dup));
        ms = members_list(pr.b, &n);
        assert_int_equal(n, 2);
        assert_string_equal(ms[0].addr, "127.0.0.1:7101");
        members_stop(dup);
    }

    /* b's services reach a. */
    svc = json_pack("{s{sisi}}", "fib", "workers", 2, "credit", 64);
    members_publish(pr.b, svc);
    json_decref(svc);
    assert_true(run_until(fx, a_sees_services, 3000));
    d = members_describe(pr.a);
    assert_non_null(d);
    assert_false(json_is_true(json_object_get(d, "fenced")));
    assert_int_equal(json_array_size(json_object_get(d, "members")), 2);
    json_decref(d);

    /* b stops without leaving: gone once its lease expires. */
    members_stop(pr.b);
    pr.b = NULL;
    t0 = uv_hrtime();
    assert_true(run_until(fx, a_alone, 6000));
    ms_taken = (uv_hrtime() - t0) / 1000000;
    assert_true(ms_taken > 500); /* the lease, not a delete */

    /* A new b leaves: gone at once. */
    memset(&pr.hb, 0, sizeof(pr.hb));
    pr.b = member(fx, &pr.hb, "b", "127.0.0.1:7102", -1);
    assert_true(run_until(fx, both_see_both, 5000));
    t0 = uv_hrtime();
    members_leave(pr.b, on_left);
    assert_true(run_until(fx, left_done, 3000));
    assert_true(run_until(fx, a_alone, 1500));
    ms_taken = (uv_hrtime() - t0) / 1000000;
    assert_true(ms_taken < 1500);
    members_stop(pr.b);
    pr.b = NULL;

    /* etcd stalls: a fences itself within the lease, keeps its list. */
    memset(&pr.hb, 0, sizeof(pr.hb));
    pr.b = member(fx, &pr.hb, "b", "127.0.0.1:7102", -1);
    assert_true(run_until(fx, both_see_both, 5000));
    assert_true(run_until(fx, b_unfenced, 3000));
    kill(fx->pid, SIGSTOP);
    t0 = uv_hrtime();
    assert_true(run_until(fx, a_fenced, 2000 + 500));
    /* b renews on its own phase: it fences up to a keepalive later. */
    assert_true(run_until(fx, b_fenced, 2000 / 3 + 500));
    assert_true((uv_hrtime() - t0) / 1000000 < 2000 + 500);
    assert_int_equal(n_members(pr.a), 2);
    assert_int_equal(n_members(pr.b), 2);
    run_for(fx, 500);
    assert_int_equal(n_members(pr.a), 2);
    /* etcd back: unfenced again (a lease lost meanwhile is re-granted). */
    kill(fx->pid, SIGCONT);
    assert_true(run_until(fx, a_unfenced, 8000));
    assert_true(run_until(fx, both_see_both, 8000));
    members_stop(pr.a);
    members_stop(pr.b);
    run_for(fx, 50);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kv_and_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_compacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_mid_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
