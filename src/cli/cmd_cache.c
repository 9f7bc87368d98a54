/* SPDX-License-Identifier: MIT */
/*
 * cmd_cache.c - "ferry cache": one operation of the service ferry.cache,
 * its payload encoded and its reply decoded by servants/cache_codec.c
 * (the format of docs/services.md). The item key travels as the
 * request's routing key. A value is printed raw on stdout; --meta adds
 * its flags and cas on stderr, --json prints one object instead.
 */
#include "cli/cmd_cache.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"
#include "servants/cache_codec.h"

#define CACHE_CLI_STDIN_MAX FRAME_DEFAULT_MAX_BODY

void
cmd_cache_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry cache get KEY [--meta | --json]\n"
            "       ferry cache gat KEY TTL_MS [--meta | --json]\n"
            "       ferry cache set|add|replace KEY VALUE|- [--ttl MS] "
            "[--flags N]\n"
            "       ferry cache append|prepend KEY VALUE|-\n"
            "       ferry cache cas KEY CAS VALUE|- [--ttl MS] [--flags N]\n"
            "       ferry cache del KEY\n"
            "       ferry cache incr|decr KEY [DELTA]\n"
            "       ferry cache touch KEY TTL_MS\n"
            "       ferry cache flush [DELAY_MS]\n"
            "       ferry cache stats\n\n"
            "One operation of the service ferry.cache (see "
            "docs/services.md). KEY is\n"
            "1 to 250 bytes; VALUE any bytes (- reads all of stdin). get "
            "prints the\n"
            "value raw on stdout; --meta adds \"flags=F cas=C bytes=N\" on "
            "stderr,\n"
            "--json prints {\"key\", \"value\" (or \"value_hex\" when not "
            "UTF-8), \"flags\",\n"
            "\"cas\"} instead. Stores print \"cas=C\" (the item's new "
            "version, for cas),\n"
            "incr/decr the new value. stats prints the cache's counters as "
            "JSON (from\n"
            "ferry.services: it needs the token that may see internals).\n\n"
            "  --ttl MS     time to live in milliseconds (default 0: "
            "never expires)\n"
            "  --flags N    32-bit client flags stored with the item "
            "(default 0)\n"
            "  --timeout MS deadline of the call (default: the daemon's)\n\n"
            "Exit status: 0 done, 1 NOT_FOUND, NOT_STORED, EXISTS (cas "
            "mismatch) or an\n"
            "error from ferryd (NAME: message on stderr), 2 usage error, "
            "3 connection\n"
            "error.\n");
}

static const struct {
    const char *name;
    uint8_t op;
} cache_cli_ops[] = {
    {"get", CACHE_OP_GET},         {"gat", CACHE_OP_GAT},
    {"set", CACHE_OP_SET},         {"add", CACHE_OP_ADD},
    {"replace", CACHE_OP_REPLACE}, {"append", CACHE_OP_APPEND},
    {"prepend", CACHE_OP_PREPEND}, {"cas", CACHE_OP_CAS},
    {"del", CACHE_OP_DELETE},      {"delete", CACHE_OP_DELETE},
    {"incr", CACHE_OP_INCR},       {"decr", CACHE_OP_DECR},
    {"touch", CACHE_OP_TOUCH},     {"flush", CACHE_OP_FLUSH},
};

static bool
cache_cli_u64(const char *opt, const char *text, uint64_t *out)
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
    cli_usage_error("cache", "%s must be a number from 0 to 2^64-1", opt);
    return false;
}

/* Prints a hit: raw, with --meta, or as JSON. */
static int
cache_cli_print_hit(const char *key, const struct cache_reply *rep, bool meta,
                    bool as_json)
{
    json_t *o, *v;
    char *text;

    if (as_json) {
        v = json_stringn((const char *)rep->value.p, rep->value.len);
        o = json_object();
        if (o == NULL) {
            goto out_nomem;
        }
        json_object_set_new(o, "key", json_string(key));
        if (v != NULL) {
            json_object_set_new(o, "value", v);
        } else {
            text = malloc(rep->value.len * 2 + 1);
            if (text == NULL) {
                json_decref(o);
                goto out_nomem;
            }
            for (size_t i = 0; i < rep->value.len; i++) {
                sprintf(text + 2 * i, "%02x", rep->value.p[i]);
            }
            text[rep->value.len * 2] = '\0';
            json_object_set_new(o, "value_hex", json_string(text));
            free(text);
        }
        json_object_set_new(o, "flags", json_integer(rep->flags));
        /* cas as a string: it is a u64, JSON numbers lose above 2^53. */
        text = malloc(24);
        if (text == NULL) {
            json_decref(o);
            goto out_nomem;
        }
        snprintf(text, 24, "%" PRIu64, rep->cas);
        json_object_set_new(o, "cas", json_string(text));
        free(text);
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (text == NULL) {
            goto out_nomem;
        }
        puts(text);
        free(text);
        return cli_flush(CLI_EXIT_OK);
    }
    if (meta) {
        fprintf(stderr, "flags=%" PRIu32 " cas=%" PRIu64 " bytes=%zu\n",
                rep->flags, rep->cas, rep->value.len);
    }
    if (rep->value.len > 0 &&
        fwrite(rep->value.p, 1, rep->value.len, stdout) != rep->value.len) {
        return cli_flush(CLI_EXIT_FERRY);
    }
    return cli_flush(CLI_EXIT_OK);

out_nomem:
    fprintf(stderr, "NOMEM: out of memory\n");
    return CLI_EXIT_FERRY;
}

/* The exit for a reply's status other than OK. */
static int
cache_cli_status(const char *key, uint8_t op, uint8_t status)
{
    switch (status) {
    case CACHE_ST_NOT_FOUND:
        fprintf(stderr, "NOT_FOUND: ferry.cache: no item '%s'\n", key);
        break;
    case CACHE_ST_NOT_STORED:
        fprintf(stderr, "NOT_STORED: ferry.cache: %s of '%s' not stored (%s)\n",
                cache_codec_op_name(op), key,
                op == CACHE_OP_ADD ? "it exists" : "it does not exist");
        break;
    case CACHE_ST_EXISTS:
        fprintf(stderr,
                "EXISTS: ferry.cache: '%s' changed since that cas was read\n",
                key);
        break;
    default:
        fprintf(stderr, "PROTO: ferry.cache: status %u\n", status);
        break;
    }
    return CLI_EXIT_FERRY;
}

/* ferry cache stats: the "cache" object of ferry.cache's entry in
 * ferry.services. */
static int
cache_cli_stats(const struct cli_ctx *ctx)
{
    struct ferry_request req = {.service = "ferry.services"};
    struct ferry_reply reply = {0};
    json_t *root, *svcs, *svc, *st = NULL;
    char *text;
    size_t i;
    int rc = cli_call_once(ctx, "cache", &req, &reply);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    root = json_loadb((const char *)reply.data, reply.len, 0, NULL);
    ferry_reply_release(&reply);
    svcs = json_object_get(root, "services");
    json_array_foreach(svcs, i, svc)
    {
        const char *name = json_string_value(json_object_get(svc, "name"));
        if (name != NULL && strcmp(name, "ferry.cache") == 0) {
            st = json_object_get(svc, "cache");
        }
    }
    if (st == NULL) {
        fprintf(stderr, "PROTO: ferry.services has no ferry.cache stats\n");
        json_decref(root);
        return CLI_EXIT_FERRY;
    }
    text = json_dumps(st, JSON_INDENT(2));
    json_decref(root);
    if (text == NULL) {
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    puts(text);
    free(text);
    return cli_flush(CLI_EXIT_OK);
}

int
cmd_cache(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct ferry_request req = {.service = "ferry.cache"};
    struct ferry_reply reply = {0};
    struct cache_req r = {0};
    struct cache_reply rep;
    const char *pos[4] = {NULL, NULL, NULL, NULL}, *v, *key = "";
    uint8_t *stdin_data = NULL, *payload = NULL;
    size_t n_pos = 0, need, i;
    uint64_t num;
    bool meta = false, as_json = false, options_done = false;
    int m, rc, j;
    const char *value_arg = NULL;

    for (j = 1; j < argc; j++) {
        if (!options_done && argv[j][0] == '-' && argv[j][1] != '\0') {
            if (strcmp(argv[j], "--") == 0) {
                options_done = true;
                continue;
            }
            if (cli_is_help(argv[j])) {
                cmd_cache_usage(stdout);
                return CLI_EXIT_OK;
            }
            if ((m = cli_opt(argc, argv, &j, "--ttl", &v)) != 0) {
                if (m < 0 || !cli_parse_u32("cache", "--ttl", v, 0, UINT32_MAX,
                                            &r.ttl_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--flags", &v)) != 0) {
                if (m < 0 || !cli_parse_u32("cache", "--flags", v, 0,
                                            UINT32_MAX, &r.flags)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--timeout", &v)) != 0) {
                if (m < 0 || !cli_parse_u32("cache", "--timeout", v, 1,
                                            UINT32_MAX, &req.deadline_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if (cli_opt(argc, argv, &j, "--meta", NULL) == 1) {
                meta = true;
            } else if (cli_opt(argc, argv, &j, "--json", NULL) == 1) {
                as_json = true;
            } else {
                return cli_usage_error("cache", "unknown option '%s'", argv[j]);
            }
            continue;
        }
        if (n_pos == 4) {
            return cli_usage_error("cache", "unexpected argument '%s'",
                                   argv[j]);
        }
        pos[n_pos++] = argv[j];
    }
    if (n_pos == 0) {
        cmd_cache_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(pos[0], "stats") == 0) {
        if (n_pos != 1) {
            return cli_usage_error("cache", "stats takes no argument");
        }
        return cache_cli_stats(ctx);
    }
    for (i = 0; i < sizeof(cache_cli_ops) / sizeof(cache_cli_ops[0]); i++) {
        if (strcmp(pos[0], cache_cli_ops[i].name) == 0) {
            r.op = cache_cli_ops[i].op;
        }
    }
    if (r.op == 0) {
        return cli_usage_error("cache",
                               "unknown operation '%s' (see ferry "
                               "cache --help)",
                               pos[0]);
    }

    /* Positional arguments each operation takes, after its name. */
    switch (r.op) {
    case CACHE_OP_FLUSH:
        need = n_pos <= 2 ? n_pos - 1 : 99;
        break;
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        need = n_pos == 2 || n_pos == 3 ? n_pos - 1 : 99;
        break;
    case CACHE_OP_GET:
    case CACHE_OP_DELETE:
        need = 1;
        break;
    case CACHE_OP_CAS:
        need = 3;
        break;
    default:
        need = 2;
        break;
    }
    if (n_pos - 1 != need) {
        return cli_usage_error("cache",
                               "%s: wrong number of arguments (see "
                               "ferry cache --help)",
                               pos[0]);
    }
    if (r.op != CACHE_OP_FLUSH) {
        key = pos[1];
        if (strlen(key) == 0 || strlen(key) > CACHE_CODEC_KEY_MAX) {
            return cli_usage_error("cache", "KEY must be 1 to %d bytes",
                                   CACHE_CODEC_KEY_MAX);
        }
    }
    switch (r.op) {
    case CACHE_OP_FLUSH:
        if (n_pos == 2 && !cli_parse_u32("cache", "DELAY_MS", pos[1], 0,
                                         UINT32_MAX, &r.delay_ms)) {
            return CLI_EXIT_USAGE;
        }
        break;
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        r.delta = 1;
        if (n_pos == 3 && !cache_cli_u64("DELTA", pos[2], &r.delta)) {
            return CLI_EXIT_USAGE;
        }
        break;
    case CACHE_OP_TOUCH:
    case CACHE_OP_GAT:
        if (!cli_parse_u32("cache", "TTL_MS", pos[2], 0, UINT32_MAX,
                           &r.ttl_ms)) {
            return CLI_EXIT_USAGE;
        }
        break;
    case CACHE_OP_CAS:
        if (!cache_cli_u64("CAS", pos[2], &r.cas)) {
            return CLI_EXIT_USAGE;
        }
        value_arg = pos[3];
        break;
    case CACHE_OP_SET:
    case CACHE_OP_ADD:
    case CACHE_OP_REPLACE:
    case CACHE_OP_APPEND:
    case CACHE_OP_PREPEND:
        value_arg = pos[2];
        break;
    default:
        break;
    }
    if (value_arg != NULL && strcmp(value_arg, "-") == 0) {
        rc = cli_read_stdin("cache", CACHE_CLI_STDIN_MAX, &stdin_data,
                            &r.value.len);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        r.value.p = stdin_data;
    } else if (value_arg != NULL) {
        r.value = (struct slice){(const uint8_t *)value_arg, strlen(value_arg)};
    }
    req.payload_len = cache_codec_write_request(NULL, &r);
    if (!frame_request_fits(strlen(req.service), strlen(key), req.payload_len,
                            FRAME_DEFAULT_MAX_BODY)) {
        free(stdin_data);
        return cli_usage_error("cache", "VALUE does not fit in a frame");
    }
    payload = malloc(req.payload_len);
    if (payload == NULL) {
        free(stdin_data);
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    cache_codec_write_request(payload, &r);
    free(stdin_data);
    req.payload = payload;
    req.key = key;
    req.key_len = strlen(key);

    rc = cli_call_once(ctx, "cache", &req, &reply);
    free(payload);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (cache_codec_decode_reply(r.op, (struct slice){reply.data, reply.len},
                                 &rep) != FERRY_OK) {
        fprintf(stderr, "PROTO: ferry.cache: malformed reply of %zu bytes\n",
                reply.len);
        ferry_reply_release(&reply);
        return CLI_EXIT_FERRY;
    }
    if (rep.status != CACHE_ST_OK) {
        rc = cache_cli_status(key, r.op, rep.status);
    } else if (r.op == CACHE_OP_GET || r.op == CACHE_OP_GAT) {
        rc = cache_cli_print_hit(key, &rep, meta, as_json);
    } else if (r.op == CACHE_OP_INCR || r.op == CACHE_OP_DECR) {
        num = rep.number;
        printf("%" PRIu64 "\n", num);
        rc = cli_flush(CLI_EXIT_OK);
    } else if (r.op == CACHE_OP_DELETE || r.op == CACHE_OP_TOUCH ||
               r.op == CACHE_OP_FLUSH) {
        rc = CLI_EXIT_OK;
    } else {
        printf("cas=%" PRIu64 "\n", rep.cas);
        rc = cli_flush(CLI_EXIT_OK);
    }
    ferry_reply_release(&reply);
    return rc;
}
