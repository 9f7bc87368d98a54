/* SPDX-License-Identifier: MIT */
/*
 * cmd_topic.c - "ferry pub" (one PUBLISH) and "ferry sub" (SUBSCRIBE, then
 * POLLs one after another on one connection, printing each message as it
 * arrives, and UNSUBSCRIBE when done or interrupted) on ferry.topic.
 * Payloads are encoded and replies decoded by topic/topic_codec.c
 * (docs/topics.md); the subject or pattern travels as the routing key.
 */
#include "cli/cmd_topic.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "topic/topic_codec.h"
#include "topic/trie.h"

#define TOPIC_CLI_SERVICE "ferry.topic"
/* Each POLL waits this long, under a deadline 5 s longer. */
#define TOPIC_CLI_WAIT_MS 25000

void
cmd_topic_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry pub SUBJECT PAYLOAD|- [--timeout MS]\n"
            "       ferry sub PATTERN [--group G] [--count N] "
            "[--max-pending N] [--close]\n\n"
            "Publish/subscribe on ferry.topic (see docs/topics.md). "
            "SUBJECT is dot-separated\n"
            "tokens (not under ferry.: those are ferryd's own events); "
            "PATTERN may use *\n"
            "for one token and a last > for the rest. pub prints "
            "\"receivers=N\", the\n"
            "subscriptions the message reached (- reads it from stdin). "
            "sub prints one\n"
            "line per message, \"SUBJECT PAYLOAD\", and \"# dropped N\" "
            "when N messages were\n"
            "dropped for it (a slow reader), until interrupted or N "
            "messages.\n\n"
            "  --group G        share messages with the other "
            "subscriptions of (PATTERN, G):\n"
            "                   each goes to one of them\n"
            "  --count N        stop after N messages\n"
            "  --max-pending N  messages ferryd buffers for it (default "
            "1000)\n"
            "  --close          when they are full, be closed (SLOW_CONSUMER) "
            "rather than\n"
            "                   drop the oldest\n"
            "  --timeout MS     deadline of the call (pub; default: the "
            "daemon's)\n\n"
            "Exit status: 0 done (or interrupted), 1 an error from ferryd "
            "(the subscription\n"
            "closed or expired), 2 usage error, 3 connection error.\n");
}

/* The payload of r in a new buffer (the caller frees it), or NULL. */
static uint8_t *
topic_cli_encode(const struct topic_req *r, size_t *len)
{
    uint8_t *p;

    *len = topic_codec_write_request(NULL, r);
    p = malloc(*len);
    if (p != NULL) {
        topic_codec_write_request(p, r);
    }
    return p;
}

static int
topic_cli_pub(const struct cli_ctx *ctx, const char *subject,
              const char *payload, uint32_t deadline_ms)
{
    struct topic_req r = {.op = TOPIC_OP_PUBLISH};
    struct ferry_reply reply = {0};
    struct topic_reply rep;
    struct slice key = {(const uint8_t *)subject, strlen(subject)};
    uint8_t *stdin_data = NULL, *body;
    size_t len;
    int rc;

    if (!topic_subject_is_valid(key)) {
        return cli_usage_error("pub",
                               "SUBJECT must be 1 to %d bytes of "
                               "dot-separated tokens, without * or >",
                               TOPIC_MAX_LEN);
    }
    if (strcmp(payload, "-") == 0) {
        rc = cli_read_stdin("pub", FRAME_DEFAULT_MAX_BODY, &stdin_data,
                            &r.message.len);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        r.message.p = stdin_data;
    } else {
        r.message = (struct slice){(const uint8_t *)payload, strlen(payload)};
    }
    body = topic_cli_encode(&r, &len);
    free(stdin_data);
    if (body == NULL) {
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    rc = cli_call_servant(ctx, "pub", TOPIC_CLI_SERVICE, key, body, len,
                          deadline_ms, &reply);
    free(body);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (topic_codec_decode_reply(TOPIC_OP_PUBLISH,
                                 (struct slice){reply.data, reply.len},
                                 &rep) != FERRY_OK) {
        fprintf(stderr, "PROTO: ferry.topic: malformed reply of %zu bytes\n",
                reply.len);
        ferry_reply_release(&reply);
        return CLI_EXIT_FERRY;
    }
    ferry_reply_release(&reply);
    printf("receivers=%" PRIu32 "\n", rep.receivers);
    return cli_flush(CLI_EXIT_OK);
}

/* SIGINT or SIGTERM arrived: sub unsubscribes and ends. */
static volatile sig_atomic_t topic_cli_stop;

static void
topic_cli_on_signal(int sig)
{
    (void)sig;
    topic_cli_stop = 1;
}

/* What the POLL loop of sub keeps. */
struct topic_cli_sub {
    const struct cli_ctx *ctx; /* borrowed */
    uint64_t sub_id;           /* from SUBSCRIBE */
    uint32_t count;            /* --count, 0: no end */
    uint32_t seen;             /* messages printed */
    bool in_flight;            /* a POLL is out */
    bool done;                 /* stop polling; rc says why */
    bool leaving;              /* UNSUBSCRIBE sent: answers are moot */
    int rc;                    /* the exit code once done */
};

static void
topic_cli_write(struct slice s)
{
    if (s.len > 0) {
        fwrite(s.p, 1, s.len, stdout);
    }
}

/* A POLL's answer: prints what came. */
static void
topic_cli_polled(void *arg, ferry_err err, const void *data, size_t len)
{
    struct topic_cli_sub *st = arg;
    struct topic_reply rep;
    struct topic_msg_entry e;
    struct slice rest;

    st->in_flight = false;
    if (st->leaving || st->done) {
        return;
    }
    if (err != FERRY_OK) {
        st->rc = cli_report_error(st->ctx, err, data, len);
        st->done = true;
        return;
    }
    if (topic_codec_decode_reply(TOPIC_OP_POLL, (struct slice){data, len},
                                 &rep) != FERRY_OK) {
        fprintf(stderr, "PROTO: ferry.topic: malformed reply of %zu bytes\n",
                len);
        st->rc = CLI_EXIT_FERRY;
        st->done = true;
        return;
    }
    if (rep.status == TOPIC_ST_NOT_FOUND) {
        fprintf(stderr,
                "NOT_FOUND: ferry.topic: subscription %" PRIu64
                " is gone (expired)\n",
                st->sub_id);
        st->rc = CLI_EXIT_FERRY;
        st->done = true;
        return;
    }
    if (rep.dropped > 0) {
        printf("# dropped %" PRIu64 "\n", rep.dropped);
    }
    rest = rep.messages;
    while (topic_codec_next_msg(&rest, &e)) {
        topic_cli_write(e.subject);
        putchar(' ');
        topic_cli_write(e.payload);
        putchar('\n');
        if (st->count > 0 && ++st->seen >= st->count) {
            st->rc = CLI_EXIT_OK;
            st->done = true;
            break;
        }
    }
    if (fflush(stdout) != 0) {
        st->rc = CLI_EXIT_FERRY;
        st->done = true;
    }
}

static int
topic_cli_sub(const struct cli_ctx *ctx, const char *pattern, const char *group,
              uint32_t count, uint32_t max_pending, bool close_policy)
{
    struct topic_req r = {.op = TOPIC_OP_SUBSCRIBE};
    struct ferry_request req = {.service = TOPIC_CLI_SERVICE};
    struct ferry_opts opts = {.token = ctx->token};
    struct ferry_client *client = NULL;
    struct ferry_reply reply = {0};
    struct topic_cli_sub st = {.ctx = ctx, .count = count};
    struct topic_reply rep;
    struct sigaction sa;
    uint8_t *body;
    ferry_err err;
    int rc = cli_check_socket(ctx, "sub");

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    r.group = (struct slice){(const uint8_t *)group, strlen(group)};
    r.max_pending = max_pending;
    r.policy = close_policy ? TOPIC_POLICY_CLOSE : TOPIC_POLICY_DROP_OLDEST;
    err = ferry_client_new(ctx->addr, &opts, &client);
    if (err == FERRY_EINVALID_ARGUMENT) {
        return cli_usage_error("sub", "bad address '%s'", ctx->addr);
    }
    if (err != FERRY_OK) {
        return cli_report_error(ctx, err, NULL, 0);
    }
    body = topic_cli_encode(&r, &req.payload_len);
    if (body == NULL) {
        ferry_client_free(client);
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    req.payload = body;
    req.key = pattern;
    req.key_len = strlen(pattern);
    err = ferry_call(client, &req, &reply);
    free(body);
    if (err != FERRY_OK) {
        rc = cli_report_error(ctx, err, reply.data, reply.len);
        ferry_reply_release(&reply);
        ferry_client_free(client);
        return rc;
    }
    if (topic_codec_decode_reply(TOPIC_OP_SUBSCRIBE,
                                 (struct slice){reply.data, reply.len},
                                 &rep) != FERRY_OK) {
        fprintf(stderr, "PROTO: ferry.topic: malformed reply of %zu bytes\n",
                reply.len);
        ferry_reply_release(&reply);
        ferry_client_free(client);
        return CLI_EXIT_FERRY;
    }
    ferry_reply_release(&reply);
    st.sub_id = rep.sub_id;

    /* Interrupted: unsubscribe before leaving (no SA_RESTART, so a wait
     * returns at once). */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = topic_cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    while (!st.done && !topic_cli_stop) {
        if (!st.in_flight) {
            uint8_t poll[17];
            struct topic_req pr = {.op = TOPIC_OP_POLL};

            pr.sub_id = st.sub_id;
            pr.wait_ms = TOPIC_CLI_WAIT_MS;
            pr.max_msgs = count > 0 ? count - st.seen : 0;
            req.payload = poll;
            req.payload_len = topic_codec_write_request(poll, &pr);
            req.key = NULL;
            req.key_len = 0;
            req.deadline_ms = TOPIC_CLI_WAIT_MS + 5000;
            err = ferry_call_async(client, &req, topic_cli_polled, &st);
            if (err != FERRY_OK) {
                st.rc = cli_report_error(ctx, err, NULL, 0);
                break;
            }
            st.in_flight = true;
        }
        /* Short turns, so an interruption is seen soon. */
        (void)ferry_client_run(client, 200);
    }
    if (!st.done) {
        st.rc = CLI_EXIT_OK;
    }
    {
        uint8_t un[9];
        struct topic_req ur = {.op = TOPIC_OP_UNSUBSCRIBE};

        st.leaving = true;
        ur.sub_id = st.sub_id;
        req.payload = un;
        req.payload_len = topic_codec_write_request(un, &ur);
        req.key = NULL;
        req.key_len = 0;
        req.deadline_ms = 2000;
        (void)ferry_call(client, &req, &reply);
        ferry_reply_release(&reply);
    }
    ferry_client_free(client);
    return cli_flush(st.rc);
}

int
cmd_topic(const struct cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL}, *v, *group = "";
    size_t n_pos = 0;
    uint32_t deadline_ms = 0, count = 0, max_pending = 0;
    bool close_policy = false, options_done = false;
    bool pub = strcmp(argv[0], "pub") == 0;
    const char *cmd = pub ? "pub" : "sub";
    int m;

    for (int j = 1; j < argc; j++) {
        if (!options_done && argv[j][0] == '-' && argv[j][1] != '\0') {
            if (strcmp(argv[j], "--") == 0) {
                options_done = true;
                continue;
            }
            if (cli_is_help(argv[j])) {
                cmd_topic_usage(stdout);
                return CLI_EXIT_OK;
            }
            if ((m = cli_opt(argc, argv, &j, "--timeout", &v)) != 0) {
                if (m < 0 || !cli_parse_u32(cmd, "--timeout", v, 1, UINT32_MAX,
                                            &deadline_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if (!pub &&
                       (m = cli_opt(argc, argv, &j, "--group", &v)) != 0) {
                if (m < 0) {
                    return CLI_EXIT_USAGE;
                }
                group = v;
            } else if (!pub &&
                       (m = cli_opt(argc, argv, &j, "--count", &v)) != 0) {
                if (m < 0 ||
                    !cli_parse_u32(cmd, "--count", v, 1, UINT32_MAX, &count)) {
                    return CLI_EXIT_USAGE;
                }
            } else if (!pub && (m = cli_opt(argc, argv, &j, "--max-pending",
                                            &v)) != 0) {
                if (m < 0 || !cli_parse_u32(cmd, "--max-pending", v, 1,
                                            TOPIC_PENDING_MAX, &max_pending)) {
                    return CLI_EXIT_USAGE;
                }
            } else if (!pub && cli_opt(argc, argv, &j, "--close", NULL) == 1) {
                close_policy = true;
            } else {
                return cli_usage_error(cmd, "unknown option '%s'", argv[j]);
            }
            continue;
        }
        if (n_pos == (pub ? 2u : 1u)) {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[j]);
        }
        pos[n_pos++] = argv[j];
    }
    if (n_pos != (pub ? 2u : 1u)) {
        cmd_topic_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (pub) {
        return topic_cli_pub(ctx, pos[0], pos[1], deadline_ms);
    }
    if (!topic_pattern_is_valid(
            (struct slice){(const uint8_t *)pos[0], strlen(pos[0])})) {
        return cli_usage_error("sub",
                               "PATTERN must be 1 to %d bytes of "
                               "dot-separated tokens, * for one, a last > "
                               "for the rest",
                               TOPIC_MAX_LEN);
    }
    if (group[0] != '\0' && !topic_group_is_valid((struct slice){
                                (const uint8_t *)group, strlen(group)})) {
        return cli_usage_error("sub",
                               "--group must be 1 to %d printable "
                               "bytes, no spaces",
                               TOPIC_GROUP_MAX);
    }
    return topic_cli_sub(ctx, pos[0], group, count, max_pending, close_policy);
}
