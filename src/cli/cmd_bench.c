/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - "ferry bench": parses the options of the load generator
 * and runs it (bench.c does the work; bench_queue.c the --queue load,
 * bench_pubsub.c the --pubsub load).
 */
#include "cli/cmd_bench.h"

#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "proto/frame.h"
#include "queue/queue_codec.h"
#include "topic/topic_codec.h"
#include "topic/trie.h"

#define BENCH_MAX_CONNECTIONS 10000
#define BENCH_MAX_DEPTH 65536
#define BENCH_MAX_SECONDS 3600
#define BENCH_MAX_ROLE 1000         /* producers, consumers */
#define BENCH_MAX_WAIT_MS 600000    /* a RESERVE's wait, as ferryd's */
#define BENCH_MAX_DELAY_MS 86400000 /* a release's delay */
#define BENCH_QUEUE_MIN_PAYLOAD 16  /* the send time and the sequence */
#define BENCH_MAX_SUBSCRIBERS 5000  /* --pubsub: each one connection */

void
cmd_bench_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry bench [--connections C] [--depth D] [--payload P]\n"
            "                   [--seconds T] [--warmup S] [--service NAME]\n"
            "                   [--timeout MS] [--idempotent] [--addr ADDR]\n"
            "                   [--token TOKEN] [--key K] [--payload-hex HEX\n"
            "                   [--expect-hex HEX]]\n"
            "       ferry bench --queue QUEUE [--producers N] [--consumers N]\n"
            "                   [--depth D] [--payload P] [--seconds T] "
            "[--warmup S]\n"
            "                   [--wait MS] [--backlog N] [--churn A/R/B\n"
            "                   [--release-delay MS] [--redrive-every MS]]\n"
            "                   [--cycles N] [--progress N]\n"
            "       ferry bench --pubsub SUBJECT [--subscribers N] "
            "[--publishers N]\n"
            "                   [--depth D] [--payload P] [--seconds T] "
            "[--warmup S]\n"
            "                   [--wait MS] [--max-pending N]\n\n"
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
            "With --queue, a producer/consumer load on ferry.queue "
            "(docs/queues.md):\n"
            "N producer connections each keep D PUSHes of P-byte jobs in "
            "flight (the\n"
            "job opens with its send time and a sequence number); N "
            "consumer\n"
            "connections each keep D RESERVEs in flight (each waiting up to "
            "--wait MS,\n"
            "with a deadline 5 s past it) and ack every job they get at once, "
            "pipelined;\n"
            "a job is consumed when its ack is answered. Use a new (or empty) "
            "queue:\n"
            "a job this run did not push counts as bad.\n\n"
            "  --queue QUEUE    the queue (its routing key)\n"
            "  --producers N    pushing connections (default 4)\n"
            "  --consumers N    reserving connections (default 4)\n"
            "  --depth D        in flight per connection (default 16)\n"
            "  --payload P      bytes of each job, at least 16 (default "
            "128)\n"
            "  --wait MS        each RESERVE's wait (default 200)\n"
            "  --backlog N      producers hold back while N jobs are pushed "
            "and not\n"
            "                   acked (default 0: no limit; 10000 with "
            "--churn)\n"
            "  --churn A/R/B    per cent of jobs acked, released, buried "
            "(sum 100),\n"
            "                   e.g. 70/20/10; default 100/0/0\n"
            "  --release-delay MS  a release's delay (default 100)\n"
            "  --redrive-every MS  with buries, one consumer REDRIVEs "
            "QUEUE.dead this\n"
            "                   often (default 1000)\n"
            "  --cycles N       end the window once N jobs were acked, "
            "released or\n"
            "                   buried (counted from the start; --seconds "
            "still bounds it)\n"
            "  --progress N     print a line on stdout every N of those:\n"
            "                   cycles=N elapsed_s=X cycles_per_s=N pushed=N "
            "acked=N\n"
            "                   released=N buried=N redriven=N alive=N\n\n"
            "With --queue it prints one line on stdout, the fields of "
            "bench_queue_load's:\n"
            "  peer=ferry pushes_per_s=N consumed_per_s=N push_p50_us=X "
            "push_p99_us=X\n"
            "  e2e_p50_us=X e2e_p99_us=X e2e_p999_us=X errors=N backlog=N\n"
            "(pushes answered OK and acks answered OK per second of the "
            "window; push\n"
            "latency from send to reply; e2e: from a job's push to its first "
            "delivery;\n"
            "errors: error frames, bad, stray and unanswered requests; "
            "backlog: pushed\n"
            "and not yet received at the window's end), details on stderr "
            "and the same\n"
            "end line (max_latency_us there includes the RESERVEs' waits).\n\n"
            "With --pubsub, a fan-out load on ferry.topic (docs/topics.md): "
            "N subscriber\n"
            "connections each SUBSCRIBE to SUBJECT (drop oldest) and keep "
            "one POLL in\n"
            "flight (up to 1000 messages, waiting up to --wait MS, a "
            "deadline 5 s past\n"
            "it); once all are subscribed, each publisher connection keeps "
            "D PUBLISHes\n"
            "of P-byte messages in flight (a message opens with its send "
            "time and a\n"
            "sequence number). Use a new subject: a message this run did "
            "not publish\n"
            "counts as bad. In the drain each subscriber takes what is left, "
            "then\n"
            "UNSUBSCRIBEs.\n\n"
            "  --pubsub SUBJECT the subject (its routing key)\n"
            "  --subscribers N  subscribing connections (default 100)\n"
            "  --publishers N   publishing connections (default 1)\n"
            "  --depth D        PUBLISHes in flight per publisher (default "
            "16)\n"
            "  --payload P      bytes of each message, at least 16 (default "
            "64)\n"
            "  --wait MS        each POLL's wait (default 200)\n"
            "  --max-pending N  each subscription's buffer (default 10000, "
            "at most 65536)\n\n"
            "With --pubsub it prints one line on stdout, the fields of "
            "bench_pubsub_load's:\n"
            "  peer=ferry published_per_s=N delivered_per_s=N dropped=N "
            "e2e_p50_us=X\n"
            "  e2e_p99_us=X e2e_p999_us=X errors=N\n"
            "(publishes answered OK and messages received by the subscribers, "
            "summed, per\n"
            "second of the window; dropped: what the POLL answers said was "
            "dropped, the\n"
            "whole run; e2e: from a message's publish to its receipt), "
            "details on stderr\n"
            "and the same end line.\n\n"
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

/* Parses --churn's "A/R/B" (per cent acked, released, buried). */
static bool
cmd_bench_churn(const char *text, uint8_t out[3])
{
    unsigned v[3];
    char end;

    if (sscanf(text, "%u/%u/%u%c", &v[0], &v[1], &v[2], &end) != 3 ||
        v[0] > 100 || v[1] > 100 || v[2] > 100 || v[0] + v[1] + v[2] != 100) {
        cli_usage_error("bench",
                        "--churn must be A/R/B, per cent acked, released "
                        "and buried, summing to 100 (e.g. 70/20/10)");
        return false;
    }
    out[0] = (uint8_t)v[0];
    out[1] = (uint8_t)v[1];
    out[2] = (uint8_t)v[2];
    return true;
}

/* Completes cfg for --queue: the roles, the queue workload's defaults. */
static int
cmd_bench_queue(struct bench_config *cfg, const char *churn, uint32_t producers,
                uint32_t consumers, bool depth_set, bool payload_set,
                bool backlog_set)
{
    if (!queue_name_is_valid(slice_str(cfg->queue))) {
        return cli_usage_error("bench",
                               "--queue must be 1 to %d bytes of "
                               "A-Z a-z 0-9 _ . : -",
                               QUEUE_NAME_MAX);
    }
    cfg->service = "ferry.queue";
    cfg->key = (const uint8_t *)cfg->queue;
    cfg->key_len = (uint32_t)strlen(cfg->queue);
    cfg->producers = producers;
    cfg->connections = producers + consumers;
    cfg->depth = depth_set ? cfg->depth : 16;
    cfg->payload = payload_set ? cfg->payload : 128;
    if (cfg->payload < BENCH_QUEUE_MIN_PAYLOAD) {
        return cli_usage_error("bench",
                               "--payload must be at least %d with "
                               "--queue",
                               BENCH_QUEUE_MIN_PAYLOAD);
    }
    cfg->churn[0] = 100;
    if (churn != NULL && !cmd_bench_churn(churn, cfg->churn)) {
        return CLI_EXIT_USAGE;
    }
    if (churn != NULL && !backlog_set) {
        cfg->backlog = 10000;
    }
    return CLI_EXIT_OK;
}

/* Completes cfg for --pubsub: the roles, the fan-out workload's
 * defaults. */
static int
cmd_bench_pubsub(struct bench_config *cfg, uint32_t publishers,
                 uint32_t subscribers, bool depth_set, bool payload_set)
{
    struct slice subject = slice_str(cfg->subject);

    if (!topic_subject_is_valid(subject) ||
        topic_subject_is_reserved(subject)) {
        return cli_usage_error("bench",
                               "--pubsub must be a subject (docs/topics.md: "
                               "dot-separated tokens, no wildcards), not "
                               "under 'ferry.'");
    }
    cfg->service = "ferry.topic";
    cfg->key = (const uint8_t *)cfg->subject;
    cfg->key_len = (uint32_t)strlen(cfg->subject);
    cfg->producers = publishers;
    cfg->connections = publishers + subscribers;
    cfg->depth = depth_set ? cfg->depth : 16;
    if (payload_set && cfg->payload < BENCH_QUEUE_MIN_PAYLOAD) {
        return cli_usage_error("bench",
                               "--payload must be at least %d with "
                               "--pubsub",
                               BENCH_QUEUE_MIN_PAYLOAD);
    }
    return CLI_EXIT_OK;
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
        .wait_ms = 200,
        .release_ms = 100,
        .redrive_ms = 1000,
        .max_pending = 10000,
    };
    const char *v, *payload_hex = NULL, *expect_hex = NULL, *key = NULL;
    const char *churn = NULL;
    uint8_t *fixed = NULL, *expect = NULL;
    uint32_t producers = 4, consumers = 4, cycles = 0, progress = 0;
    uint32_t subscribers = 100, publishers = 1;
    bool ok = true, depth_set = false, payload_set = false, echo_opt = false;
    bool queue_opt = false, backlog_set = false, pubsub_opt = false;
    bool wait_set = false;
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
            echo_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--depth", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--depth", v, 1,
                                        BENCH_MAX_DEPTH, &cfg.depth);
            depth_set = true;
        } else if ((m = cli_opt(argc, argv, &i, "--payload", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--payload", v, 0,
                                        FRAME_DEFAULT_MAX_BODY, &cfg.payload);
            payload_set = true;
        } else if ((m = cli_opt(argc, argv, &i, "--queue", &v)) != 0) {
            ok = m > 0;
            cfg.queue = v;
        } else if ((m = cli_opt(argc, argv, &i, "--producers", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--producers", v, 1,
                                        BENCH_MAX_ROLE, &producers);
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--consumers", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--consumers", v, 1,
                                        BENCH_MAX_ROLE, &consumers);
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--wait", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--wait", v, 0,
                                        BENCH_MAX_WAIT_MS, &cfg.wait_ms);
            wait_set = true;
        } else if ((m = cli_opt(argc, argv, &i, "--backlog", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--backlog", v, 0, UINT32_MAX,
                                        &cfg.backlog);
            queue_opt = backlog_set = true;
        } else if ((m = cli_opt(argc, argv, &i, "--churn", &v)) != 0) {
            ok = m > 0;
            churn = v;
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--release-delay", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--release-delay", v, 0,
                                        BENCH_MAX_DELAY_MS, &cfg.release_ms);
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--redrive-every", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--redrive-every", v, 1,
                                        BENCH_MAX_DELAY_MS, &cfg.redrive_ms);
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--cycles", &v)) != 0) {
            ok = m > 0 &&
                 cli_parse_u32("bench", "--cycles", v, 1, UINT32_MAX, &cycles);
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--progress", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--progress", v, 1, UINT32_MAX,
                                        &progress);
            queue_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--pubsub", &v)) != 0) {
            ok = m > 0;
            cfg.subject = v;
        } else if ((m = cli_opt(argc, argv, &i, "--subscribers", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--subscribers", v, 1,
                                        BENCH_MAX_SUBSCRIBERS, &subscribers);
            pubsub_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--publishers", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--publishers", v, 1,
                                        BENCH_MAX_ROLE, &publishers);
            pubsub_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--max-pending", &v)) != 0) {
            ok = m > 0 && cli_parse_u32("bench", "--max-pending", v, 1,
                                        TOPIC_PENDING_MAX, &cfg.max_pending);
            pubsub_opt = true;
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
            echo_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--key", &v)) != 0) {
            ok = m > 0;
            key = v;
            echo_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--payload-hex", &v)) != 0) {
            ok = m > 0;
            payload_hex = v;
            echo_opt = true;
        } else if ((m = cli_opt(argc, argv, &i, "--expect-hex", &v)) != 0) {
            ok = m > 0;
            expect_hex = v;
            echo_opt = true;
        } else {
            return cli_usage_error("bench", "unexpected argument '%s'",
                                   argv[i]);
        }
    }
    if (!ok) {
        return CLI_EXIT_USAGE;
    }
    if (cfg.queue != NULL && cfg.subject != NULL) {
        return cli_usage_error("bench", "--queue and --pubsub do not mix");
    }
    if (cfg.subject != NULL) {
        if (echo_opt || queue_opt) {
            return cli_usage_error("bench",
                                   "--pubsub takes none of --connections, "
                                   "--service, --key, --payload-hex, "
                                   "--expect-hex nor the --queue options");
        }
        rc = cmd_bench_pubsub(&cfg, publishers, subscribers, depth_set,
                              payload_set);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
    } else if (pubsub_opt) {
        return cli_usage_error("bench", "--subscribers, --publishers and "
                                        "--max-pending go with --pubsub");
    } else if (cfg.queue != NULL) {
        if (echo_opt) {
            return cli_usage_error("bench",
                                   "--queue takes none of --connections, "
                                   "--service, --key, --payload-hex, "
                                   "--expect-hex");
        }
        rc = cmd_bench_queue(&cfg, churn, producers, consumers, depth_set,
                             payload_set, backlog_set);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        cfg.cycles = cycles;
        cfg.progress = progress;
    } else if (queue_opt || wait_set) {
        return cli_usage_error("bench", "--producers, --consumers, --wait, "
                                        "--backlog, --churn, "
                                        "--release-delay, --redrive-every, "
                                        "--cycles and --progress go with "
                                        "--queue");
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
