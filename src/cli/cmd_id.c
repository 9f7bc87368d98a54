/* SPDX-License-Identifier: MIT */
/*
 * cmd_id.c - "ferry id [N]" prints N new ids of ferry.id, one a line;
 * "ferry id decode ID" asks ferry.id what an id says. Payloads encoded and
 * replies decoded by servants/id_codec.c (docs/services.md).
 */
#include "cli/cmd_id.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "servants/id_codec.h"

void
cmd_id_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry id [N] [--json]\n"
            "       ferry id decode ID [--json]\n\n"
            "N new ids (1 to 10000, default 1) from the service ferry.id, "
            "one a line,\n"
            "strictly increasing. decode prints what ID says: "
            "\"time=ISO unix_ms=MS\n"
            "node=N seq=S\" (--json: one object). An id is 64 bits: 41 of "
            "milliseconds\n"
            "since 2026-01-01T00:00:00Z, 10 of node_id, 12 of sequence "
            "(docs/services.md).\n\n"
            "  --json       print JSON instead\n"
            "  --timeout MS deadline of the call (default: the daemon's)\n\n"
            "Exit status: 0 done, 1 an error from ferryd (NAME: message on "
            "stderr),\n"
            "2 usage error, 3 connection error.\n");
}

static bool
id_cli_u64(const char *text, uint64_t *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9') {
        return false;
    }
    errno = 0;
    *out = strtoull(text, &end, 10);
    return errno == 0 && *end == '\0';
}

int
cmd_id(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct ferry_request req = {.service = "ferry.id"};
    struct ferry_reply reply = {0};
    const char *pos[2] = {NULL, NULL}, *v;
    char err[ID_CODEC_ERR_SIZE], when[32];
    uint8_t payload[9];
    struct id_parts p;
    const uint8_t *ids;
    uint32_t count = 1, n, i;
    uint64_t id = 0;
    bool as_json = false, decode = false;
    size_t n_pos = 0;
    struct tm tm;
    time_t secs;
    int m, rc, j;

    for (j = 1; j < argc; j++) {
        if (argv[j][0] == '-' && argv[j][1] != '\0') {
            if (cli_is_help(argv[j])) {
                cmd_id_usage(stdout);
                return CLI_EXIT_OK;
            }
            if ((m = cli_opt(argc, argv, &j, "--timeout", &v)) != 0) {
                if (m < 0 || !cli_parse_u32("id", "--timeout", v, 1, UINT32_MAX,
                                            &req.deadline_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if (cli_opt(argc, argv, &j, "--json", NULL) == 1) {
                as_json = true;
            } else {
                return cli_usage_error("id", "unknown option '%s'", argv[j]);
            }
            continue;
        }
        if (n_pos == 2) {
            return cli_usage_error("id", "unexpected argument '%s'", argv[j]);
        }
        pos[n_pos++] = argv[j];
    }
    if (n_pos >= 1 && strcmp(pos[0], "decode") == 0) {
        decode = true;
        if (n_pos != 2 || !id_cli_u64(pos[1], &id) || (id >> 63) != 0) {
            return cli_usage_error("id", "decode needs one decimal ID below "
                                         "2^63");
        }
        req.payload_len = id_encode_decode(payload, id);
        req.flags = FERRY_IDEMPOTENT;
    } else {
        if (n_pos == 2) {
            return cli_usage_error("id", "unexpected argument '%s'", pos[1]);
        }
        if (n_pos == 1 &&
            !cli_parse_u32("id", "N", pos[0], 1, ID_COUNT_MAX, &count)) {
            return CLI_EXIT_USAGE;
        }
        req.payload_len = id_encode_next(payload, count);
    }
    req.payload = payload;
    rc = cli_call_once(ctx, "id", &req, &reply);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (decode) {
        if (id_decode_decode_reply(reply.data, reply.len, &p, err,
                                   sizeof(err)) != FERRY_OK) {
            goto out_proto;
        }
        secs = (time_t)(p.unix_ms / 1000);
        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        if (as_json) {
            printf("{\"id\":\"%" PRIu64 "\",\"time\":\"%s.%03uZ\","
                   "\"unix_ms\":%" PRIu64 ",\"node\":%u,\"seq\":%u}\n",
                   id, when, (unsigned)(p.unix_ms % 1000), p.unix_ms,
                   (unsigned)p.node, (unsigned)p.seq);
        } else {
            printf("time=%s.%03uZ unix_ms=%" PRIu64 " node=%u seq=%u\n", when,
                   (unsigned)(p.unix_ms % 1000), p.unix_ms, (unsigned)p.node,
                   (unsigned)p.seq);
        }
    } else {
        if (id_decode_next_reply(reply.data, reply.len, &n, &ids, err,
                                 sizeof(err)) != FERRY_OK) {
            goto out_proto;
        }
        if (as_json) {
            printf("{\"ids\":[");
        }
        for (i = 0; i < n; i++) {
            if (as_json) {
                printf("%s\"%" PRIu64 "\"", i ? "," : "", id_get(ids, i));
            } else {
                printf("%" PRIu64 "\n", id_get(ids, i));
            }
        }
        if (as_json) {
            printf("]}\n");
        }
    }
    ferry_reply_release(&reply);
    return cli_flush(CLI_EXIT_OK);

out_proto:
    fprintf(stderr, "PROTO: %s\n", err);
    ferry_reply_release(&reply);
    return CLI_EXIT_FERRY;
}
