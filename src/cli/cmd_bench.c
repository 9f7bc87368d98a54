/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - "ferry bench": parses the options of the load generator
 * and runs it (bench.c does the work).
 */
#include "cli/cmd_bench.h"

#include <stdlib.h>
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
            "                   [--token TOKEN] [--key K] [--payload-hex HEX\n"
            "                   [--expect-hex HEX]]\n\n"
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
            "  --token TOKEN    access token (default $FERRY_TOKEN)\n"
            "  --key K          routing key of every request (bytes of K)\n"
            "  --payload-hex HEX  the same payload for every request, in "
            "hex (replaces\n"
            "                   --payload; for services that do not echo, "
            "e.g. a cache\n"
            "                   GET: see docs/services.md)\n"
            "  --expect-hex HEX with --payload-hex: the reply every "
            "request must get;\n"
            "                   without it any REPLY counts as good\n\n"
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

static int
cmd_bench_hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Decodes an option's hex text into a new buffer of *len bytes (the
 * length checked against max before allocating); NULL after a usage
 * message. */
static uint8_t *
cmd_bench_hex(const char *opt, const char *text, uint32_t max, uint32_t *len)
{
    size_t n = strlen(text), i;
    uint8_t *out;
    int hi, lo;

    if (n % 2 != 0 || n / 2 > max) {
        cli_usage_error("bench",
                        "%s needs an even number of hex digits, "
                        "at most %u bytes",
                        opt, max);
        return NULL;
    }
    out = malloc(n / 2 > 0 ? n / 2 : 1);
    if (out == NULL) {
        fprintf(stderr, "NOMEM: out of memory\n");
        return NULL;
    }
    for (i = 0; i < n / 2; i++) {
        hi = cmd_bench_hexval(text[2 * i]);
        lo = cmd_bench_hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            cli_usage_error("bench", "%s: '%c%c' is not a hex byte", opt,
                            text[2 * i], text[2 * i + 1]);
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = (uint32_t)(n / 2);
    return out;
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
    const char *v, *payload_hex = NULL, *expect_hex = NULL, *key = NULL;
    uint8_t *fixed = NULL, *expect = NULL;
    bool ok = true;
    int i, m, rc;

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
        } else if ((m = cli_opt(argc, argv, &i, "--key", &v)) != 0) {
            ok = m > 0;
            key = v;
        } else if ((m = cli_opt(argc, argv, &i, "--payload-hex", &v)) != 0) {
            ok = m > 0;
            payload_hex = v;
        } else if ((m = cli_opt(argc, argv, &i, "--expect-hex", &v)) != 0) {
            ok = m > 0;
            expect_hex = v;
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
    if (key != NULL) {
        if (strlen(key) == 0 || strlen(key) > FRAME_MAX_KEY) {
            return cli_usage_error("bench", "--key must be 1 to %d bytes",
                                   FRAME_MAX_KEY);
        }
        cfg.key = (const uint8_t *)key;
        cfg.key_len = (uint32_t)strlen(key);
    }
    if (expect_hex != NULL && payload_hex == NULL) {
        return cli_usage_error("bench", "--expect-hex needs --payload-hex");
    }
    if (!frame_request_fits(strlen(cfg.service), cfg.key_len,
                            payload_hex != NULL ? strlen(payload_hex) / 2
                                                : cfg.payload,
                            FRAME_DEFAULT_MAX_BODY)) {
        return cli_usage_error("bench", "the payload does not fit in a frame");
    }
    if (addr_parse(ctx->addr, &cfg.addr) != FERRY_OK) {
        return cli_usage_error("bench", "bad address '%s'", ctx->addr);
    }
    if (cli_check_socket(ctx, "bench") != CLI_EXIT_OK) {
        return CLI_EXIT_CONN;
    }
    cfg.token = ctx->token;
    if (payload_hex != NULL) {
        fixed = cmd_bench_hex("--payload-hex", payload_hex,
                              FRAME_DEFAULT_MAX_BODY, &cfg.payload);
        if (fixed == NULL) {
            return CLI_EXIT_USAGE;
        }
        cfg.fixed = fixed;
    }
    if (expect_hex != NULL) {
        expect = cmd_bench_hex("--expect-hex", expect_hex,
                               FRAME_DEFAULT_MAX_BODY, &cfg.expect_len);
        if (expect == NULL) {
            free(fixed);
            return CLI_EXIT_USAGE;
        }
        cfg.expect = expect;
    }
    rc = bench_run(&cfg);
    free(fixed);
    free(expect);
    return rc;
}
