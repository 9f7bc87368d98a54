/* SPDX-License-Identifier: MIT */
/*
 * cmd_kv.c - "ferry kv": one operation of the service ferry.kv (ls and
 * watch: as many calls as they need), payloads encoded and replies
 * decoded by servants/kv_codec.c (docs/services.md). The key travels as
 * the request's routing key. A value is printed raw on stdout; --meta
 * adds its revisions on stderr.
 */
#include "cli/cmd_kv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"
#include "servants/kv_codec.h"

#define KV_CLI_WAIT_MS 25000

void
cmd_kv_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry kv get KEY [--meta]\n"
            "       ferry kv put KEY VALUE|- [--if-absent | --if-rev R]\n"
            "       ferry kv del KEY [--if-rev R]\n"
            "       ferry kv ls [--prefix P] [--limit N] [--keys-only] "
            "[--meta]\n"
            "       ferry kv count [--prefix P]\n"
            "       ferry kv watch KEY [--prefix] [--from-rev R] "
            "[--count N]\n\n"
            "Operations of the durable key-value store ferry.kv (see "
            "docs/services.md).\n"
            "KEY is 1 to 448 bytes, VALUE any bytes (- reads stdin). get "
            "prints the value\n"
            "raw; --meta adds \"rev= create_rev= mod_rev= version= bytes=\" "
            "on stderr.\n"
            "put and del print \"rev=N\" (the revision of the write). ls "
            "prints one key a\n"
            "line (--meta: key, mod_rev, version, tab-separated), every "
            "page followed\n"
            "up to --limit (default all). watch prints one line per event, "
            "\"put KEY REV\n"
            "VALUE\" or \"delete KEY REV\", until interrupted or --count N "
            "events; KEY is\n"
            "a prefix with --prefix (\"\" for every key).\n\n"
            "  --if-absent  put only if the key does not exist\n"
            "  --if-rev R   only if the key's mod_rev is R (0: absent)\n"
            "  --timeout MS deadline of each call (default: the daemon's)\n\n"
            "Exit status: 0 done, 1 NOT_FOUND, EXISTS (a condition failed) "
            "or an error\n"
            "from ferryd, 2 usage error, 3 connection error.\n");
}

static bool
kv_cli_u64(const char *opt, const char *text, uint64_t *out)
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
    cli_usage_error("kv", "%s must be a number from 0 to 2^64-1", opt);
    return false;
}

/* One call of r on key; decodes the reply into *rep, the payload kept in
 * *reply (released by the caller on CLI_EXIT_OK). */
static int
kv_cli_call(const struct cli_ctx *ctx, struct slice key, const struct kv_req *r,
            uint32_t deadline_ms, struct ferry_reply *reply,
            struct kv_reply *rep)
{
    size_t len = kv_codec_write_request(NULL, r);
    uint8_t *payload = malloc(len);
    int rc;

    if (payload == NULL) {
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    kv_codec_write_request(payload, r);
    rc = cli_call_servant(ctx, "kv", "ferry.kv", key, payload, len, deadline_ms,
                          reply);
    free(payload);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (kv_codec_decode_reply(r->op, (struct slice){reply->data, reply->len},
                              rep) != FERRY_OK) {
        fprintf(stderr, "PROTO: ferry.kv: malformed reply of %zu bytes\n",
                reply->len);
        ferry_reply_release(reply);
        return CLI_EXIT_FERRY;
    }
    return CLI_EXIT_OK;
}

static void
kv_cli_write(const void *p, size_t n)
{
    if (n > 0) {
        fwrite(p, 1, n, stdout);
    }
}

int
cmd_kv(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct kv_req r = {0};
    struct kv_reply rep;
    struct ferry_reply reply = {0};
    const char *pos[3] = {NULL, NULL, NULL}, *v, *prefix = "";
    uint8_t *stdin_data = NULL;
    size_t n_pos = 0;
    uint32_t deadline_ms = 0, limit = 0, count = 0;
    uint64_t if_rev = 0, from_rev = 0;
    bool meta = false, if_absent = false, has_rev = false, keys_only = false;
    bool watch_prefix = false, options_done = false;
    struct slice key = {(const uint8_t *)"", 0};
    int m, rc = CLI_EXIT_OK;
    /* watch takes --prefix as a flag, ls and count with a value. */
    bool is_watch = argc > 1 && strcmp(argv[1], "watch") == 0;

    for (int j = 1; j < argc; j++) {
        if (!options_done && argv[j][0] == '-' && argv[j][1] != '\0') {
            if (strcmp(argv[j], "--") == 0) {
                options_done = true;
                continue;
            }
            if (cli_is_help(argv[j])) {
                cmd_kv_usage(stdout);
                return CLI_EXIT_OK;
            }
            if ((m = cli_opt(argc, argv, &j, "--timeout", &v)) != 0) {
                if (m < 0 || !cli_parse_u32("kv", "--timeout", v, 1, UINT32_MAX,
                                            &deadline_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--if-rev", &v)) != 0) {
                if (m < 0 || !kv_cli_u64("--if-rev", v, &if_rev)) {
                    return CLI_EXIT_USAGE;
                }
                has_rev = true;
            } else if ((m = cli_opt(argc, argv, &j, "--from-rev", &v)) != 0) {
                if (m < 0 || !kv_cli_u64("--from-rev", v, &from_rev)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--limit", &v)) != 0) {
                if (m < 0 ||
                    !cli_parse_u32("kv", "--limit", v, 1, UINT32_MAX, &limit)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &j, "--count", &v)) != 0) {
                if (m < 0 ||
                    !cli_parse_u32("kv", "--count", v, 1, UINT32_MAX, &count)) {
                    return CLI_EXIT_USAGE;
                }
            } else if (!is_watch &&
                       (m = cli_opt(argc, argv, &j, "--prefix", &v)) != 0) {
                if (m < 0) {
                    return CLI_EXIT_USAGE;
                }
                prefix = v;
            } else if (cli_opt(argc, argv, &j, "--prefix", NULL) == 1) {
                watch_prefix = true;
            } else if (cli_opt(argc, argv, &j, "--if-absent", NULL) == 1) {
                if_absent = true;
            } else if (cli_opt(argc, argv, &j, "--keys-only", NULL) == 1) {
                keys_only = true;
            } else if (cli_opt(argc, argv, &j, "--meta", NULL) == 1) {
                meta = true;
            } else {
                return cli_usage_error("kv", "unknown option '%s'", argv[j]);
            }
            continue;
        }
        if (n_pos == 3) {
            return cli_usage_error("kv", "unexpected argument '%s'", argv[j]);
        }
        pos[n_pos++] = argv[j];
    }
    if (n_pos == 0) {
        cmd_kv_usage(stderr);
        return CLI_EXIT_USAGE;
    }
#define KV_NEED(n)                                                             \
    do {                                                                       \
        if (n_pos != (n) + 1) {                                                \
            return cli_usage_error("kv",                                       \
                                   "%s: wrong number of arguments (see "       \
                                   "ferry kv --help)",                         \
                                   pos[0]);                                    \
        }                                                                      \
    } while (0)
    if (n_pos >= 2) {
        key = (struct slice){(const uint8_t *)pos[1], strlen(pos[1])};
        if (key.len > KV_KEY_MAX) {
            return cli_usage_error("kv", "KEY must be 1 to %d bytes",
                                   KV_KEY_MAX);
        }
    }
    if (strcmp(pos[0], "get") == 0) {
        KV_NEED(1);
        r.op = KV_OP_GET;
        rc = kv_cli_call(ctx, key, &r, deadline_ms, &reply, &rep);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (rep.status != KV_ST_OK) {
            fprintf(stderr, "NOT_FOUND: ferry.kv: no key '%s'\n", pos[1]);
            rc = CLI_EXIT_FERRY;
        } else {
            if (meta) {
                fprintf(stderr,
                        "rev=%" PRIu64 " create_rev=%" PRIu64
                        " mod_rev=%" PRIu64 " version=%" PRIu64 " bytes=%zu\n",
                        rep.rev, rep.meta.create_rev, rep.meta.mod_rev,
                        rep.meta.version, rep.value.len);
            }
            kv_cli_write(rep.value.p, rep.value.len);
            rc = cli_flush(CLI_EXIT_OK);
        }
        ferry_reply_release(&reply);
        return rc;
    }
    if (strcmp(pos[0], "put") == 0 || strcmp(pos[0], "del") == 0 ||
        strcmp(pos[0], "delete") == 0) {
        bool put = pos[0][0] == 'p';

        KV_NEED(put ? 2 : 1);
        if (if_absent && (has_rev || !put)) {
            return cli_usage_error("kv", "--if-absent is for put, without "
                                         "--if-rev");
        }
        r.op = put ? KV_OP_PUT : KV_OP_DELETE;
        r.cond = if_absent ? KV_COND_ABSENT
                 : has_rev ? KV_COND_REV
                           : KV_COND_ANY;
        r.rev = if_rev;
        if (put && strcmp(pos[2], "-") == 0) {
            if ((rc = cli_read_stdin("kv", FRAME_DEFAULT_MAX_BODY, &stdin_data,
                                     &r.value.len)) != CLI_EXIT_OK) {
                return rc;
            }
            r.value.p = stdin_data;
        } else if (put) {
            r.value = (struct slice){(const uint8_t *)pos[2], strlen(pos[2])};
        }
        rc = kv_cli_call(ctx, key, &r, deadline_ms, &reply, &rep);
        free(stdin_data);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (rep.status == KV_ST_OK) {
            printf("rev=%" PRIu64 "\n", rep.rev);
            rc = cli_flush(CLI_EXIT_OK);
        } else if (rep.status == KV_ST_EXISTS) {
            fprintf(stderr,
                    "EXISTS: ferry.kv: '%s' is at mod_rev %" PRIu64 "\n",
                    pos[1], rep.rev);
            rc = CLI_EXIT_FERRY;
        } else {
            fprintf(stderr, "NOT_FOUND: ferry.kv: no key '%s'\n", pos[1]);
            rc = CLI_EXIT_FERRY;
        }
        ferry_reply_release(&reply);
        return rc;
    }
    if (strcmp(pos[0], "ls") == 0 || strcmp(pos[0], "count") == 0) {
        bool ls = pos[0][0] == 'l';
        uint8_t start[KV_KEY_MAX + 1], end[KV_KEY_MAX];
        size_t plen = strlen(prefix), elen = 0;
        uint64_t shown = 0;

        KV_NEED(0);
        if (plen > KV_KEY_MAX) {
            return cli_usage_error("kv", "--prefix must be at most %d bytes",
                                   KV_KEY_MAX);
        }
        if (!ls) {
            r.op = KV_OP_COUNT;
            r.mode = KV_MODE_PREFIX;
            rc = kv_cli_call(ctx, (struct slice){(const uint8_t *)prefix, plen},
                             &r, deadline_ms, &reply, &rep);
            if (rc == CLI_EXIT_OK) {
                printf("%" PRIu64 "\n", rep.count);
                ferry_reply_release(&reply);
                rc = cli_flush(CLI_EXIT_OK);
            }
            return rc;
        }
        /* The end of the prefix's range, for the pages after the first. */
        memcpy(end, prefix, plen);
        elen = plen;
        while (elen > 0 && end[elen - 1] == 0xff) {
            elen--;
        }
        if (elen > 0) {
            end[elen - 1]++;
        }
        memcpy(start, prefix, plen);
        key = (struct slice){start, plen};
        r.op = KV_OP_RANGE;
        r.mode = KV_MODE_PREFIX;
        r.keys_only = keys_only;
        for (;;) {
            struct slice rest, k, val;
            struct kv_meta em;
            uint8_t t;

            r.limit = limit > 0 && limit - shown < KV_LIMIT_DEFAULT
                          ? (uint32_t)(limit - shown)
                          : KV_LIMIT_DEFAULT;
            rc = kv_cli_call(ctx, key, &r, deadline_ms, &reply, &rep);
            if (rc != CLI_EXIT_OK) {
                return rc;
            }
            rest = rep.entries;
            k.len = 0;
            while (kv_codec_next_entry(&rest, false, &t, &k, &em, &val)) {
                kv_cli_write(k.p, k.len);
                if (meta) {
                    printf("\t%" PRIu64 "\t%" PRIu64, em.mod_rev, em.version);
                }
                putchar('\n');
                shown++;
                memcpy(start, k.p, k.len);
                key = (struct slice){start, k.len};
            }
            ferry_reply_release(&reply);
            if (!rep.more || (limit > 0 && shown >= limit) || rep.n == 0) {
                break;
            }
            /* Continue after the last key, up to the prefix's end. */
            start[key.len] = 0;
            key.len++;
            r.mode = KV_MODE_RANGE;
            r.end = (struct slice){end, elen};
        }
        return cli_flush(CLI_EXIT_OK);
    }
    if (strcmp(pos[0], "watch") == 0) {
        uint64_t seen = 0;

        KV_NEED(1);
        r.op = KV_OP_WATCH;
        r.prefix = watch_prefix;
        r.from_rev = from_rev;
        r.wait_ms = KV_CLI_WAIT_MS;
        for (;;) {
            struct slice rest, k, val;
            struct kv_meta em;
            uint8_t t;

            rc = kv_cli_call(ctx, key, &r,
                             deadline_ms ? deadline_ms : KV_CLI_WAIT_MS + 5000,
                             &reply, &rep);
            if (rc != CLI_EXIT_OK) {
                return rc;
            }
            rest = rep.entries;
            if (rep.n == 0) {
                r.from_rev = rep.rev + 1;
            }
            while (kv_codec_next_entry(&rest, true, &t, &k, &em, &val)) {
                fputs(t == 0 ? "put " : "delete ", stdout);
                kv_cli_write(k.p, k.len);
                printf(" %" PRIu64, em.mod_rev);
                if (t == 0) {
                    putchar(' ');
                    kv_cli_write(val.p, val.len);
                }
                putchar('\n');
                r.from_rev = em.mod_rev + 1;
                if (count > 0 && ++seen >= count) {
                    break;
                }
            }
            ferry_reply_release(&reply);
            fflush(stdout);
            if (count > 0 && seen >= count) {
                return cli_flush(CLI_EXIT_OK);
            }
        }
    }
#undef KV_NEED
    return cli_usage_error("kv", "unknown operation '%s' (see ferry kv --help)",
                           pos[0]);
}
