/*
 * bench.h - the engine of ferry bench: a closed-loop load generator that
 * speaks ferry frames directly over non-blocking sockets in one epoll(7)
 * loop, so that it costs little next to the server it measures.
 *
 * Each connection says HELLO as a caller, then keeps `depth` requests in
 * flight: every reply (or error) sends the next request at once. Each
 * request's payload is derived from its id, so every reply is checked
 * byte for byte against what was sent (the services measured echo).
 */
#ifndef FERRY_CLI_BENCH_H
#define FERRY_CLI_BENCH_H

#include <stdint.h>

#include "core/addr.h"

struct bench_config {
    struct addr addr;     /* where to connect */
    const char *service;  /* borrowed: the service to call */
    uint32_t connections; /* sockets, each with its own in-flight window */
    uint32_t depth;       /* requests in flight per connection */
    uint32_t payload;     /* bytes of each request's payload */
    uint32_t seconds;     /* length of the measurement window */
    uint32_t warmup_s;    /* load before the window, not measured */
    uint32_t timeout_ms;  /* deadline sent with each request; 0 = default */
    const char *token;    /* borrowed: access token for HELLO, or NULL */
};

/*
 * Runs the benchmark. Prints one line on stdout,
 * "rps=N p50_us=X p99_us=X p999_us=X", and details on stderr. Returns
 * CLI_EXIT_OK when every request got its correct reply, CLI_EXIT_CONN when
 * it could not connect, CLI_EXIT_FERRY otherwise.
 */
int bench_run(const struct bench_config *cfg);

#endif
