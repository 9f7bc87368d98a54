/* SPDX-License-Identifier: MIT */
/*
 * cmd_admin.c - "ferry admin": the operator's commands, sent as JSON to the
 * built-in service ferry.admin (see src/broker/control.h), with one line
 * printed from ferryd's JSON answer.
 *
 * ferryd takes them from a caller with the admin token or, when no admin
 * token is set, from any caller on its unix socket; so the default address
 * here is that socket in the default data folder, not TCP.
 */
#include "cli/cmd_admin.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/paths.h"

#define ADMIN_SERVICE "ferry.admin"

void
cmd_admin_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry admin drain-worker ID\n"
            "       ferry admin disable SERVICE [--fallback TEXT]\n"
            "       ferry admin enable SERVICE\n"
            "       ferry admin reload\n"
            "       ferry admin leave\n"
            "       (each also takes --json, --addr ADDR, --token TOKEN)\n\n"
            "The operator's commands:\n"
            "  drain-worker ID   give worker ID (see ferry services) no new "
            "requests;\n"
            "                    it finishes those it holds\n"
            "  disable SERVICE   callers get SERVICE_DISABLED at once, or "
            "with\n"
            "                    --fallback, TEXT as their reply\n"
            "  enable SERVICE    undo disable\n"
            "  reload            re-read ferryd's configuration, like "
            "SIGHUP\n"
            "  leave             a cluster node hands its vbuckets over, "
            "leaves the\n"
            "                    cluster and stops, like SIGTERM\n\n"
            "  --json            print ferryd's JSON answer as is\n\n"
            "ferryd accepts them with its admin token, or, when it has none, "
            "only on its\n"
            "unix socket. The default address is that socket: "
            "<run_dir>/ferryd.sock, where\n"
            "run_dir is /run/ferry as root, else $XDG_RUNTIME_DIR/ferry "
            "(see ferryd --help)\n"
            "(or $FERRY_ADDR, or --addr).\n\n"
            "Exit status: 0 done, 1 refused by ferryd (printed as NAME: "
            "message),\n"
            "2 usage error, 3 connection error.\n");
}

/* Builds the command document from argv; NULL after printing why. */
static json_t *
admin_command(int argc, char **argv, bool *raw)
{
    const char *op = NULL, *arg = NULL, *fallback = NULL, *v;
    json_t *cmd;

    for (int i = 1; i < argc; i++) {
        switch (cli_opt(argc, argv, &i, "--fallback", &v)) {
        case 1:
            fallback = v;
            continue;
        case -1:
            return NULL;
        default:
            break;
        }
        if (strcmp(argv[i], "--json") == 0) {
            *raw = true;
        } else if (op == NULL) {
            op = argv[i];
        } else if (arg == NULL) {
            arg = argv[i];
        } else {
            cli_usage_error("admin", "unexpected argument '%s'", argv[i]);
            return NULL;
        }
    }
    if (op == NULL) {
        cli_usage_error("admin", "missing command (see ferry admin --help)");
        return NULL;
    }
    bool bare = strcmp(op, "reload") == 0 || strcmp(op, "leave") == 0;

    if (!bare && strcmp(op, "drain-worker") != 0 &&
        strcmp(op, "disable") != 0 && strcmp(op, "enable") != 0) {
        cli_usage_error("admin",
                        "unknown command '%s' (expected drain-worker, "
                        "disable, enable, reload or leave)",
                        op);
        return NULL;
    }
    /* reload and leave take no argument, the others one; only disable a
     * fallback. */
    if ((arg == NULL) != bare ||
        (fallback != NULL && strcmp(op, "disable") != 0)) {
        cli_usage_error("admin",
                        "wrong arguments for '%s' (see ferry admin "
                        "--help)",
                        op);
        return NULL;
    }
    cmd = json_pack("{s:s}", "op", op);
    if (cmd == NULL) {
        cli_usage_error("admin", "out of memory");
        return NULL;
    }
    if (strcmp(op, "drain-worker") == 0) {
        uint32_t id;
        if (!cli_parse_u32("admin", "ID", arg, 1, UINT32_MAX, &id)) {
            json_decref(cmd);
            return NULL;
        }
        json_object_set_new(cmd, "worker", json_integer(id));
    } else if (arg != NULL) {
        /* json_string() refuses bytes that are not UTF-8: NULL, not set. */
        if (json_object_set_new(cmd, "service", json_string(arg)) != 0 ||
            (fallback != NULL &&
             json_object_set_new(cmd, "fallback", json_string(fallback)) !=
                 0)) {
            json_decref(cmd);
            cli_usage_error("admin", "SERVICE and TEXT must be UTF-8");
            return NULL;
        }
    }
    return cmd;
}

/* Prints a JSON array of strings as "a, b" ("none" when empty). */
static void
admin_print_names(json_t *arr)
{
    size_t i;
    json_t *v;

    if (json_array_size(arr) == 0) {
        fputs("none", stdout);
    }
    json_array_foreach(arr, i, v)
    {
        printf("%s%s", i ? ", " : "", json_string_value(v));
    }
}

/* One line saying what ferryd did. */
static void
admin_print(json_t *r)
{
    const char *op = json_string_value(json_object_get(r, "op"));
    const char *svc = json_string_value(json_object_get(r, "service"));

    if (op == NULL) {
        printf("done\n");
    } else if (strcmp(op, "disable") == 0) {
        printf("service '%s' disabled: callers get %s\n", svc,
               json_is_true(json_object_get(r, "fallback"))
                   ? "the fallback reply"
                   : "SERVICE_DISABLED");
    } else if (strcmp(op, "enable") == 0) {
        printf("service '%s' enabled%s\n", svc,
               json_is_true(json_object_get(r, "was_disabled"))
                   ? ""
                   : " (it was not disabled)");
    } else if (strcmp(op, "drain-worker") == 0) {
        printf("worker %lld '%s' draining: no new requests, %lld held\n",
               (long long)json_integer_value(json_object_get(r, "worker")),
               json_string_value(json_object_get(r, "name")),
               (long long)json_integer_value(json_object_get(r, "held")));
    } else if (strcmp(op, "leave") == 0) {
        printf("leaving: handing its vbuckets over, then stopping "
               "(ferry cluster rebalance shows it)\n");
    } else if (strcmp(op, "reload") == 0) {
        printf("reloaded; changed: ");
        admin_print_names(json_object_get(r, "applied"));
        if (json_array_size(json_object_get(r, "need_restart")) > 0) {
            printf("; need a restart (old values kept): ");
            admin_print_names(json_object_get(r, "need_restart"));
        }
        printf("\n");
    } else {
        printf("done\n");
    }
}

int
cmd_admin(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct ferry_reply reply = {0};
    struct ferry_request req = {.service = ADMIN_SERVICE};
    struct cli_ctx c = *ctx;
    char sock[PATHS_MAX + 32];
    json_error_t jerr;
    json_t *cmd, *answer;
    bool raw = false;
    char *text;
    int rc = CLI_EXIT_OK;

    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cmd_admin_usage(stdout);
            return CLI_EXIT_OK;
        }
    }
    cmd = admin_command(argc, argv, &raw);
    if (cmd == NULL) {
        return CLI_EXIT_USAGE;
    }
    text = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    if (text == NULL) {
        return cli_usage_error("admin", "out of memory");
    }
    if (!ctx->addr_set) {
        cli_default_socket(sock, sizeof(sock));
        c.addr = sock;
    }
    req.payload = text;
    req.payload_len = strlen(text);
    rc = cli_call_once(&c, "admin", &req, &reply);
    free(text);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (raw) {
        fwrite(reply.data, 1, reply.len, stdout);
        fputc('\n', stdout);
        goto out_free;
    }
    answer = json_loadb((const char *)reply.data, reply.len, 0, &jerr);
    if (answer == NULL) {
        fprintf(stderr, "PROTO: ferry.admin sent bad JSON: %s\n", jerr.text);
        rc = CLI_EXIT_FERRY;
        goto out_free;
    }
    admin_print(answer);
    json_decref(answer);

out_free:
    ferry_reply_release(&reply);
    return cli_flush(rc);
}
