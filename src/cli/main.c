/* SPDX-License-Identifier: MIT */
/*
 * main.c - the ferry command: takes the global options, picks the
 * subcommand and hands it the rest of the arguments.
 *
 *   ferry [--addr ADDR] [--token TOKEN] COMMAND [ARGS...]
 *
 * --addr and --token are accepted anywhere before a "--", so "ferry call
 * --addr A echo" and "ferry --addr A call echo" mean the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_admin.h"
#include "cli/cmd_bench.h"
#include "cli/cmd_cache.h"
#include "cli/cmd_cluster.h"
#include "cli/cmd_id.h"
#include "cli/cmd_call.h"
#include "cli/cmd_kv.h"
#include "cli/cmd_queue.h"
#include "cli/cmd_services.h"
#include "cli/cmd_topic.h"
#include "core/addr.h"
#include "proto/frame.h"

struct command {
    const char *name; /* "call" */
    int (*run)(const struct cli_ctx *ctx, int argc, char **argv);
    void (*usage)(FILE *out); /* its --help */
    const char *summary;      /* one line */
};

static const struct command commands[] = {
    {"call", cmd_call, cmd_call_usage, "call a service, print its reply"},
    {"services", cmd_services, cmd_services_usage,
     "list services, workers and their statistics"},
    {"cluster", cmd_cluster, cmd_cluster_usage,
     "the cluster's members, vbuckets and links"},
    {"bench", cmd_bench, cmd_bench_usage,
     "load generator: throughput and latency of a service"},
    {"admin", cmd_admin, cmd_admin_usage,
     "drain a worker, disable/enable a service, reload the config"},
    {"cache", cmd_cache, cmd_cache_usage,
     "get, set, delete ... items of the cache ferry.cache"},
    {"kv", cmd_kv, cmd_kv_usage,
     "get, put, delete, list, count and watch keys of ferry.kv"},
    {"id", cmd_id, cmd_id_usage, "new ids from ferry.id, or decode one"},
    {"push", cmd_queue, cmd_queue_usage,
     "push a job onto a durable queue (ferry.queue)"},
    {"reserve", cmd_queue, cmd_queue_usage, "take a job from a queue"},
    {"ack", cmd_queue, cmd_queue_usage, "a reserved job is done"},
    {"release", cmd_queue, cmd_queue_usage,
     "put a reserved job back, after a delay"},
    {"touch", cmd_queue, cmd_queue_usage, "extend a job's reservation"},
    {"bury", cmd_queue, cmd_queue_usage,
     "move a reserved job to the dead-letter queue"},
    {"queues", cmd_queue, cmd_queue_usage, "every queue and its counts"},
    {"queue", cmd_queue, cmd_queue_usage,
     "stats, peek, redrive, pause, resume, purge, delete, configure"},
    {"pub", cmd_topic, cmd_topic_usage,
     "publish a message on a subject (ferry.topic)"},
    {"sub", cmd_topic, cmd_topic_usage,
     "print the messages of a pattern as they arrive"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
main_usage(FILE *out)
{
    size_t i;

    fprintf(out, "usage: ferry [--addr ADDR] [--token TOKEN] COMMAND "
                 "[ARGS...]\n"
                 "       ferry COMMAND --help\n\n"
                 "Talks to ferryd at ADDR (host:port, [v6]:port or "
                 "unix:/path);\n"
                 "default: $FERRY_ADDR, else " ADDR_DEFAULT " (for admin: "
                 "ferryd's unix\n"
                 "socket, unix:/run/ferry/ferryd.sock as root, else\n"
                 "unix:$XDG_RUNTIME_DIR/ferry/ferryd.sock).\n"
                 "TOKEN is the access token sent in HELLO, when ferryd "
                 "asks for one;\n"
                 "default: $FERRY_TOKEN.\n\n"
                 "commands:\n");
    for (i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\nexit status:\n"
                 "  0  success\n"
                 "  1  error from ferryd or a worker (printed as NAME: "
                 "message),\n"
                 "     or a failed benchmark\n"
                 "  2  usage error\n"
                 "  3  connection error (refused, lost, timed out)\n");
}

/*
 * Removes every "--addr ADDR" / "--addr=ADDR" and "--token TOKEN" before a
 * "--" from argv, keeping the last values in *addr and *token. Returns the
 * new argc, or -1 when an option lacks its value.
 */
static int
main_take_globals(int argc, char **argv, const char **addr, const char **token)
{
    int i, n = 0;
    const char *v;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc) {
                argv[n++] = argv[i++];
            }
            break;
        }
        switch (cli_opt(argc, argv, &i, "--addr", &v)) {
        case 1:
            *addr = v;
            continue;
        case -1:
            return -1;
        default:
            break;
        }
        switch (cli_opt(argc, argv, &i, "--token", &v)) {
        case 1:
            *token = v;
            break;
        case -1:
            return -1;
        default:
            argv[n++] = argv[i];
            break;
        }
    }
    return n;
}

int
main(int argc, char **argv)
{
    struct cli_ctx ctx = {addr_default(), "ferry", getenv("FERRY_TOKEN"),
                          false};
    const char *env_addr = getenv("FERRY_ADDR");
    const char *dflt = ctx.addr;
    size_t i;

    argc = main_take_globals(argc - 1, argv + 1, &ctx.addr, &ctx.token);
    ctx.addr_set =
        ctx.addr != dflt || (env_addr != NULL && env_addr[0] != '\0');
    argv++;
    if (argc < 0) {
        return CLI_EXIT_USAGE;
    }
    if (argc == 0) {
        main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[0]) || strcmp(argv[0], "help") == 0) {
        main_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (ctx.addr[0] == '\0') {
        fprintf(stderr, "ferry: --addr must not be empty\n");
        return CLI_EXIT_USAGE;
    }
    if (ctx.token != NULL && strlen(ctx.token) > FRAME_MAX_NAME) {
        fprintf(stderr, "ferry: --token must be at most %d bytes\n",
                FRAME_MAX_NAME);
        return CLI_EXIT_USAGE;
    }
    for (i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[0], commands[i].name) == 0) {
            return commands[i].run(&ctx, argc, argv);
        }
    }
    fprintf(stderr, "ferry: unknown command '%s' (see ferry --help)\n",
            argv[0]);
    return CLI_EXIT_USAGE;
}
