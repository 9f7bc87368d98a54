/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - "ferry bench": parses the options of the load generator
 * and runs it (bench.c does the work).
 */
#include "cli/cmd_bench.h"

#include <string.h>

#include "cli/bench.h"
#include "proto/frame.h"

#define BENCH_MAX_CONNECTIONS 10000
#define BENCH_MAX_DEPTH 65536
#define BENCH_MAX_SECONDS 3600

void
cmd_bench_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry bench [--connections C] [--depth D] [--payload P]\n"
            "                   [--seconds T] [--warmup S] [--service NAME]\n"
            "                   [--timeout MS] [--idempotent] [--addr ADDR]\n"
            "                   [--token TOKEN]\n\n"
            "Closed-loop load: C connections each keep D requests of P "
            "bytes in flight\n"
            "(each reply sends the next request). S seconds of warm-up, "
            "then T seconds\n"
            "measured; every reply is checked byte for byte, so the service "
            "must echo.\n\n"
            "  --connections C  sockets (default 1)\n"
            "  --depth D        requests in flight per socket (default 1)\n"
            "  --payload P      payload bytes per request (default 64)\n"
            "  --seconds T      measured seconds (default 5)\n"
            "  --warmup S       unmeasured seconds first (default 1)\n"
            "  --service NAME   service to call (default echo)\n"
            "  --timeout MS     deadline of each request (default: the "
            "daemon's)\n"
            "  --idempotent     mark every request IDEMPOTENT (ferryd may "
            "retry it)\n"
            "  --token TOKEN    access token (default $FERRY_TOKEN)\n\n"
            "Prints one line on stdout:\n"
            "  rps=<int> p50_us=<float> p99_us=<float> p999_us=<float>\n"
            "(replies per second and latency from send to reply, both in "
            "the measured\n"
            "window), and details on stderr. Works against any server "
            "speaking ferry\n"
            "frames, ferryd or bench_echo_server.\n\n"
            "After the measured window it sends nothing more and waits for "
            "the requests\n"
            "outstanding (up to the --timeout, else 5 s, plus 1 s). The last "
            "line on\n"
            "stderr accounts for every request sent:\n"
            "  ferry bench: end sent=N replied=N errors=N bad=N "
            "outstanding=N stray=N\n"
            "               max_latency_us=N [ERROR_NAME=N ...]\n"
            "with sent = replied + errors + bad + outstanding (bad: a reply "
            "with wrong\n"
            "bytes; outstanding: never answered; stray: answers for no "
            "request;\n"
            "max_latency_us: longest send-to-answer time of any request, "
            "warm-up\n"
            "included), then the request errors by name.\n\n"
            "Exit status: 0 every request got its correct reply, 1 errors, "
            "wrong or\n"
            "missing replies, 2 usage error, 3 connection error.\n");
}

int
cmd_bench(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct bench_config cfg = {
        .service = "echo",
        .connections = 1,
        .depth = 1,
        .payload = 64,
        .seconds = 5,
        .warmup_s = 1,
    };
    const char *v;
    bool ok = true;
    int i, m;

    for (i = 1; i < argc && ok; i++) {
        if (cli_is_help(argv[i])) {
            cmd_bench_usage(stdout);
            return CLI_EXIT_OK;
        }
        if ((m = cli_opt(argc, argv, &i, "--connections", &v)) != 0) {
            ok =
                m > 0 && cli_parse_u32("bench", "--connections", v, 1,
                                       BENCH_MAX_CONNECTIONS, &cfg.connections);
        } else if ((m = cli_opt(argc, argv, &i, "--depth", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--depth", v, 1,
                                        BENCH_MAX_DEPTH, &cfg.depth);
        } else if ((m = cli_opt(argc, argv, &i, "--payload", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--payload", v, 0,
                                        FRAME_DEFAULT_MAX_BODY, &cfg.payload);
        } else if ((m = cli_opt(argc, argv, &i, "--seconds", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--seconds", v, 1,
                                        BENCH_MAX_SECONDS, &cfg.seconds);
        } else if ((m = cli_opt(argc, argv, &i, "--warmup", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--warmup", v, 0,
                                        BENCH_MAX_SECONDS, &cfg.warmup_s);
        } else if ((m = cli_opt(argc, argv, &i, "--timeout", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--timeout", v, 1, UINT32_MAX,
                                        &cfg.timeout_ms);
        } else if (cli_opt(argc, argv, &i, "--idempotent", NULL) == 1) {
            cfg.idempotent = true;
        } else if ((m = cli_opt(argc, argv, &i, "--service", &v)) != 0) {
            ok = m > 0;
            cfg.service = v;
        } else {
            return cli_usage_error("bench", "unexpected argument '%s'",
                                   argv[i]);
        }
    }
    if (!ok) {
        return CLI_EXIT_USAGE;
    }
    if (strlen(cfg.service) == 0 || strlen(cfg.service) > FRAME_MAX_NAME) {
        return cli_usage_error("bench", "--service must be 1 to %d bytes",
                               FRAME_MAX_NAME);
    }
    if (!frame_request_fits(strlen(cfg.service), 0, cfg.payload,
                            FRAME_DEFAULT_MAX_BODY)) {
        return cli_usage_error("bench", "--payload %u does not fit in a frame",
                               cfg.payload);
    }
    if (addr_parse(ctx->addr, &cfg.addr) != FERRY_OK) {
        return cli_usage_error("bench", "bad address '%s'", ctx->addr);
    }
    if (cli_check_socket(ctx, "bench") != CLI_EXIT_OK) {
        return CLI_EXIT_CONN;
    }
    cfg.token = ctx->token;
    return bench_run(&cfg);
}
