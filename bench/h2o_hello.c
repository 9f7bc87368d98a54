/* SPDX-License-Identifier: MIT */
/*
 * h2o_hello.c - bench_h2o_hello, the no-broker baseline of ferry's HTTP
 * benchmarks: what the same h2o library on the same libuv does with
 * nothing behind it.
 *
 *   bench_h2o_hello --listen HOST:PORT
 *
 * One thread, one libuv loop, one h2o host whose only handler answers
 * every request, whatever its method and path, with 200 and the body
 * "hello" (text/plain). HTTP/1.1 with keep-alive, and HTTP/2 over
 * cleartext with prior knowledge, as h2o does by default. Prints READY on
 * stdout once it listens; SIGINT or SIGTERM stop it.
 */
#include <h2o.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HH_NAME "bench_h2o_hello"

static h2o_globalconf_t hh_config;
static h2o_context_t hh_ctx;
static h2o_accept_ctx_t hh_accept_ctx;

static int
hh_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT("hello"));

    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                   NULL, H2O_STRLIT("text/plain"));
    req->res.content_length = body.len;
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static void
hh_on_close(uv_handle_t *h)
{
    free(h);
}

static void
hh_on_accept(uv_stream_t *listener, int status)
{
    uv_tcp_t *conn;
    h2o_socket_t *sock;

    if (status != 0)
        return;
    conn = malloc(sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, hh_on_close);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    sock = h2o_uv_socket_create((uv_stream_t *)conn, hh_on_close);
    h2o_accept(&hh_accept_ctx, sock);
}

static void
hh_on_signal(uv_signal_t *sig, int signum)
{
    uv_stop(sig->loop);
}

/* Splits "HOST:PORT" into addr; 0 on success. */
static int
hh_parse_addr(const char *s, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    char *end;
    long port;

    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    return uv_ip4_addr(host, (int)port, addr);
}

static void
hh_usage(FILE *out)
{
    fprintf(out, "usage: " HH_NAME " --listen HOST:PORT\n"
                 "\n"
                 "Answers every HTTP request with 200 \"hello\"; the bare-h2o\n"
                 "baseline of bench/http_run.sh. Prints READY once listening.\n");
}

int
main(int argc, char **argv)
{
    const char *listen_at = NULL;
    struct sockaddr_in addr;
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    h2o_handler_t *handler;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            hh_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_at = argv[++i];
        } else {
            hh_usage(stderr);
            return 2;
        }
    }
    if (listen_at == NULL || hh_parse_addr(listen_at, &addr) != 0) {
        hh_usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&hh_config);
    host = h2o_config_register_host(&hh_config,
                                    h2o_iovec_init(H2O_STRLIT("default")),
                                    65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = hh_on_req;

    h2o_context_init(&hh_ctx, loop, &hh_config);
    memset(&hh_accept_ctx, 0, sizeof(hh_accept_ctx));
    hh_accept_ctx.ctx = &hh_ctx;
    hh_accept_ctx.hosts = hh_config.hosts;

    uv_tcp_init(loop, &listener);
    rc = uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&listener, 1024, hh_on_accept);
    if (rc != 0) {
        fprintf(stderr, HH_NAME ": listen on %s: %s\n", listen_at,
                uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, hh_on_signal, SIGINT);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, hh_on_signal, SIGTERM);

    printf("READY\n");
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
