/* SPDX-License-Identifier: MIT */
/*
 * cmd_queue.c - the queue commands: "ferry push", "reserve", "ack",
 * "release", "touch", "bury", "queues" and "ferry queue OP QUEUE", one
 * call each of the service ferry.queue (docs/queues.md), payloads encoded
 * and replies decoded by queue/queue_codec.c. The queue travels as the
 * request's routing key.
 */
#include "cli/cmd_queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "queue/queue_codec.h"

#define QUEUE_CLI_WAIT_MS 0

void
cmd_queue_usage(FILE *out)
{
    fprintf(
        out,
        "usage: ferry push QUEUE PAYLOAD [--priority N] [--delay MS] "
        "[--dedup ID]\n"
        "                  [--visibility MS] [--max-deliveries N]\n"
        "       ferry reserve QUEUE [--wait MS] [--visibility MS]\n"
        "       ferry ack QUEUE ID TOKEN\n"
        "       ferry release QUEUE ID TOKEN [--delay MS | --backoff]\n"
        "       ferry touch QUEUE ID TOKEN [--visibility MS]\n"
        "       ferry bury QUEUE ID TOKEN [REASON]\n"
        "       ferry queues\n"
        "       ferry queue stats|pause|resume|purge|delete QUEUE\n"
        "       ferry queue peek QUEUE [--ready|--delayed|--dead|--reserved] "
        "[--limit N]\n"
        "       ferry queue redrive QUEUE [--limit N]\n"
        "       ferry queue configure QUEUE JSON\n\n"
        "Durable work queues of ferry.queue (see docs/queues.md). A queue "
        "is made on\n"
        "first use. push prints the new job's id alone on a line (a "
        "--dedup ID seen\n"
        "within the queue's window prints the first push's id). reserve "
        "prints\n"
        "\"id=ID token=TOKEN attempts=N\" on a line, then the payload; with "
        "nothing\n"
        "ready within --wait MS (default 0) it exits 1. --priority is "
        "-32768..32767,\n"
        "higher first. release --backoff takes the queue's backoff list. "
        "bury moves\n"
        "the job to the dead-letter queue (QUEUE.dead); redrive moves dead "
        "jobs back.\n"
        "queues and queue stats print JSON. peek prints one line per job: "
        "\"id=ID\n"
        "attempts=N priority=P state=S age_ms=A\", then its reason and "
        "payload.\n\n"
        "Exit status: 0 done, 1 nothing to reserve, a stale token, no such "
        "job or an\n"
        "error from ferryd, 2 usage error, 3 connection error.\n");
}

static bool
queue_cli_u64(const char *cmd, const char *opt, const char *text, uint64_t *out)
{
    char *end;

    errno = 0;
    if (text[0] < '0' || text[0] > '9') {
        goto out_bad;
    }
    *out = strtoull(text, &end, 10);
    if (errno == 0 && *end == '\0') {
        return true;
    }
out_bad:
    cli_usage_error(cmd, "%s must be a number from 0 to 2^64-1", opt);
    return false;
}

/* One call of r; the reply decoded into *rep, its payload in *reply
 * (released by the caller on CLI_EXIT_OK). */
static int
queue_cli_call(const struct cli_ctx *ctx, const char *cmd,
               const struct queue_req *r, uint32_t deadline_ms,
               struct ferry_reply *reply, struct queue_reply *rep)
{
    size_t len = queue_codec_write_request(NULL, r);
    uint8_t *payload = malloc(len);
    int rc;

    if (payload == NULL) {
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    queue_codec_write_request(payload, r);
    rc = cli_call_servant(ctx, cmd, "ferry.queue", r->queue, payload, len,
                          deadline_ms, reply);
    free(payload);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (queue_codec_decode_reply(r->op, (struct slice){reply->data, reply->len},
                                 rep) != FERRY_OK) {
        fprintf(stderr, "PROTO: ferry.queue: malformed reply of %zu bytes\n",
                reply->len);
        ferry_reply_release(reply);
        return CLI_EXIT_FERRY;
    }
    return CLI_EXIT_OK;
}

static void
queue_cli_write(struct slice s)
{
    if (s.len > 0) {
        fwrite(s.p, 1, s.len, stdout);
    }
}

/* The message of a status other than OK; CLI_EXIT_FERRY. */
static int
queue_cli_status(const char *cmd, uint8_t st, const char *queue)
{
    switch (st) {
    case QUEUE_ST_EMPTY:
        fprintf(stderr, "EMPTY: ferry %s: no job ready in '%s'\n", cmd, queue);
        break;
    case QUEUE_ST_STALE:
        fprintf(stderr,
                "STALE: ferry %s: the token no longer holds the job (it "
                "timed out and was re-delivered, or was released)\n",
                cmd);
        break;
    default:
        fprintf(stderr, "NOT_FOUND: ferry %s: no such job or queue in '%s'\n",
                cmd, queue);
        break;
    }
    return CLI_EXIT_FERRY;
}

static int
queue_cli_print_peek(const struct queue_reply *rep)
{
    static const char *const states[] = {"ready", "delayed", "reserved"};
    struct slice rest = rep->entries;
    struct queue_peek_entry e;

    while (queue_codec_next_peek_entry(&rest, &e)) {
        printf("id=%" PRIu64 " attempts=%" PRIu32 " priority=%d state=%s "
               "age_ms=%" PRIu64 "\n",
               e.id, e.attempts, (int)e.priority, states[e.state], e.age_ms);
        if (e.reason.len > 0) {
            fputs("reason: ", stdout);
            queue_cli_write(e.reason);
            putchar('\n');
        }
        queue_cli_write(e.payload);
        putchar('\n');
    }
    return cli_flush(CLI_EXIT_OK);
}

int
cmd_queue(const struct cli_ctx *ctx, int argc, char **argv)
{
    const char *cmd = argv[0], *v, *pos[4] = {NULL, NULL, NULL, NULL};
    struct queue_req r;
    struct queue_reply rep;
    struct ferry_reply reply = {0};
    size_t n_pos = 0, want;
    uint32_t u, deadline_ms = 0, wait_ms = QUEUE_CLI_WAIT_MS;
    bool options_done = false, backoff = false;
    int m, rc;
    int64_t prio = 0;
    const char *op;

    memset(&r, 0, sizeof(r));
    r.which = QUEUE_PEEK_READY;
    for (int j = 1; j < argc; j++) {
        if (!options_done && argv[j][0] == '-' && argv[j][1] != '\0' &&
            !(argv[j][1] >= '0' && argv[j][1] <= '9')) {
            if (strcmp(argv[j], "--") == 0) {
                options_done = true;
                continue;
            }
            if (cli_is_help(argv[j])) {
                cmd_queue_usage(stdout);
                return CLI_EXIT_OK;
            }
            if ((m = cli_opt(argc, argv, &j, "--timeout", &v)) != 0) {
                if (m < 0 || !cli_parse_u32(cmd, "--timeout", v, 1, UINT32_MAX,
                                            &deadline_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--priority", &v)) != 0) {
                char *end;
                errno = 0;
                prio = m > 0 ? strtoll(v, &end, 10) : 0;
                if (m < 0 || errno != 0 || *end != '\0' || prio < -32768 ||
                    prio > 32767) {
                    return cli_usage_error(
                        cmd, "--priority must be a number from -32768 to "
                             "32767");
                }
                r.priority = (int16_t)prio;
            } else if ((m = cli_opt(argc, argv, &j, "--delay", &v)) != 0) {
                if (m < 0 || !cli_parse_u32(cmd, "--delay", v, 0,
                                            UINT32_MAX - 1, &r.delay_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--visibility", &v)) != 0) {
                if (m < 0 || !cli_parse_u32(cmd, "--visibility", v, 1,
                                            UINT32_MAX, &r.visibility_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--max-deliveries", &v)) !=
                       0) {
                if (m < 0 ||
                    !cli_parse_u32(cmd, "--max-deliveries", v, 0, 65535, &u)) {
                    return CLI_EXIT_USAGE;
                }
                r.max_deliveries = (uint16_t)u;
            } else if ((m = cli_opt(argc, argv, &j, "--wait", &v)) != 0) {
                if (m < 0 ||
                    !cli_parse_u32(cmd, "--wait", v, 0, 600000, &wait_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--limit", &v)) != 0) {
                if (m < 0 || !cli_parse_u32(cmd, "--limit", v, 1, UINT32_MAX,
                                            &r.limit)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--dedup", &v)) != 0) {
                if (m < 0 || strlen(v) == 0 || strlen(v) > QUEUE_DEDUP_MAX) {
                    return cli_usage_error(cmd, "--dedup ID is 1 to %d bytes",
                                           QUEUE_DEDUP_MAX);
                }
                r.dedup = slice_str(v);
            } else if (cli_opt(argc, argv, &j, "--backoff", NULL) == 1) {
                backoff = true;
            } else if (cli_opt(argc, argv, &j, "--ready", NULL) == 1) {
                r.which = QUEUE_PEEK_READY;
            } else if (cli_opt(argc, argv, &j, "--delayed", NULL) == 1) {
                r.which = QUEUE_PEEK_DELAYED;
            } else if (cli_opt(argc, argv, &j, "--dead", NULL) == 1) {
                r.which = QUEUE_PEEK_DEAD;
            } else if (cli_opt(argc, argv, &j, "--reserved", NULL) == 1) {
                r.which = QUEUE_PEEK_RESERVED;
            } else {
                return cli_usage_error(cmd, "unknown option '%s'", argv[j]);
            }
            continue;
        }
        if (n_pos == 4) {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[j]);
        }
        pos[n_pos++] = argv[j];
    }
    /* "ferry queue OP QUEUE ...": the op is the first word. */
    op = cmd;
    if (strcmp(cmd, "queue") == 0) {
        if (n_pos == 0) {
            cmd_queue_usage(stderr);
            return CLI_EXIT_USAGE;
        }
        op = pos[0];
        memmove(pos, pos + 1, sizeof(pos) - sizeof(pos[0]));
        pos[3] = NULL;
        n_pos--;
    }
    if (strcmp(op, "queues") == 0) {
        want = 0;
        r.op = QUEUE_OP_STATS;
    } else if (strcmp(op, "push") == 0) {
        want = 2;
        r.op = QUEUE_OP_PUSH;
    } else if (strcmp(op, "reserve") == 0) {
        want = 1;
        r.op = QUEUE_OP_RESERVE;
        r.wait_ms = wait_ms;
        if (deadline_ms == 0) {
            deadline_ms = wait_ms + 5000;
        }
    } else if (strcmp(op, "ack") == 0 || strcmp(op, "release") == 0 ||
               strcmp(op, "touch") == 0) {
        want = 3;
        r.op = op[0] == 'a'   ? QUEUE_OP_ACK
               : op[0] == 'r' ? QUEUE_OP_RELEASE
                              : QUEUE_OP_TOUCH;
        if (backoff) {
            r.delay_ms = QUEUE_RELEASE_BACKOFF;
        }
    } else if (strcmp(op, "bury") == 0) {
        want = n_pos == 4 ? 4 : 3;
        r.op = QUEUE_OP_BURY;
    } else if (strcmp(op, "stats") == 0) {
        want = 1;
        r.op = QUEUE_OP_STATS;
    } else if (strcmp(op, "peek") == 0) {
        want = 1;
        r.op = QUEUE_OP_PEEK;
        if (r.limit > QUEUE_PEEK_MAX) {
            return cli_usage_error(cmd, "--limit is at most %d for peek",
                                   QUEUE_PEEK_MAX);
        }
    } else if (strcmp(op, "redrive") == 0 || strcmp(op, "kick") == 0) {
        want = 1;
        r.op = QUEUE_OP_REDRIVE;
    } else if (strcmp(op, "pause") == 0 || strcmp(op, "resume") == 0) {
        want = 1;
        r.op = op[0] == 'p' ? QUEUE_OP_PAUSE : QUEUE_OP_RESUME;
    } else if (strcmp(op, "purge") == 0) {
        want = 1;
        r.op = QUEUE_OP_PURGE;
    } else if (strcmp(op, "delete") == 0) {
        want = 1;
        r.op = QUEUE_OP_DELETE;
    } else if (strcmp(op, "configure") == 0) {
        want = 2;
        r.op = QUEUE_OP_CONFIGURE;
    } else {
        return cli_usage_error(cmd,
                               "unknown operation '%s' (see ferry %s "
                               "--help)",
                               op, cmd);
    }
    if (n_pos != want) {
        return cli_usage_error(cmd,
                               "%s: wrong number of arguments (see "
                               "ferry %s --help)",
                               op, cmd);
    }
    if (want > 0) {
        r.queue = slice_str(pos[0]);
        if (!queue_name_is_valid(r.queue)) {
            return cli_usage_error(cmd,
                                   "QUEUE must be 1 to %d bytes of A-Z a-z "
                                   "0-9 _ . : -",
                                   QUEUE_NAME_MAX);
        }
    }
    if (r.op == QUEUE_OP_PUSH) {
        r.payload = slice_str(pos[1]);
    } else if (r.op == QUEUE_OP_CONFIGURE) {
        r.settings = slice_str(pos[1]);
    } else if (want >= 3) {
        if (!queue_cli_u64(cmd, "ID", pos[1], &r.id) ||
            !queue_cli_u64(cmd, "TOKEN", pos[2], &r.token)) {
            return CLI_EXIT_USAGE;
        }
        if (want == 4) {
            r.reason = slice_str(pos[3]);
        }
    }
    rc = queue_cli_call(ctx, cmd, &r, deadline_ms, &reply, &rep);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (rep.status != QUEUE_ST_OK) {
        rc = queue_cli_status(cmd, rep.status, want > 0 ? pos[0] : "");
        ferry_reply_release(&reply);
        return rc;
    }
    switch (r.op) {
    case QUEUE_OP_PUSH:
        printf("%" PRIu64 "\n", rep.id);
        break;
    case QUEUE_OP_RESERVE:
        printf("id=%" PRIu64 " token=%" PRIu64 " attempts=%" PRIu32 "\n",
               rep.id, rep.token, rep.attempts);
        queue_cli_write(rep.payload);
        putchar('\n');
        break;
    case QUEUE_OP_TOUCH:
        printf("visibility_ms=%" PRIu32 "\n", rep.deadline_ms);
        break;
    case QUEUE_OP_REDRIVE:
    case QUEUE_OP_PURGE:
        printf("%" PRIu64 "\n", rep.count);
        break;
    case QUEUE_OP_PEEK:
        rc = queue_cli_print_peek(&rep);
        ferry_reply_release(&reply);
        return rc;
    case QUEUE_OP_STATS:
    case QUEUE_OP_CONFIGURE:
        queue_cli_write(rep.json);
        putchar('\n');
        break;
    default:
        break;
    }
    ferry_reply_release(&reply);
    return cli_flush(CLI_EXIT_OK);
}
