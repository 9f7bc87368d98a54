/* SPDX-License-Identifier: MIT */
/*
 * cmd_cluster.c - "ferry cluster": calls the built-in service
 * ferry.cluster and prints its JSON (docs/cluster.md, "Seeing the
 * cluster"): this node, its epoch, fencing and lease, then a table of
 * the members with their vbuckets, link, counters and services. On a
 * single node ({"enabled":false}) it prints "not clustered" and exits 0.
 * A field missing from the document prints as "-".
 */
#include "cli/cmd_cluster.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER_SERVICE "ferry.cluster"

void
cmd_cluster_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry cluster [--json] [--addr ADDR] [--token TOKEN]\n"
            "       ferry cluster rebalance [--wait MS]\n\n"
            "Shows the cluster as the node at ADDR sees it: its name, the "
            "epoch of its\n"
            "vbucket map, whether it is fenced, its etcd lease, then every "
            "member with\n"
            "its address, node id, vbuckets owned, peer link (self, up, "
            "down), requests\n"
            "forwarded to it and failed there, and its services with their "
            "worker counts.\n"
            "On a single node it prints \"not clustered\".\n\n"
            "rebalance prints how the node's handovers go: the vbuckets "
            "whose durable\n"
            "data it holds but another node now owns (pending), the one "
            "moving, and\n"
            "those moved and failed; they run by themselves. With --wait "
            "it polls until\n"
            "none is pending (exit 0) or MS pass (exit 1).\n\n"
            "These are ferryd's internals (the built-in ferry.cluster), "
            "shown to whom\n"
            "ferry services is shown (see ferry services --help).\n\n"
            "  --json           print the daemon's JSON as is\n"
            "  --token TOKEN    access token (default $FERRY_TOKEN)\n\n"
            "Exit status: 0 success, 1 error from ferryd, 2 usage error, "
            "3 connection\n"
            "error.\n");
}

/* "svc:2,other:1": the services of a member with their workers, or "-". */
static void
cluster_services(json_t *m, char *buf, size_t size)
{
    json_t *svcs = json_object_get(m, "services"), *s;
    const char *name;
    size_t used = 0;
    char workers[32];

    buf[0] = '\0';
    json_object_foreach(svcs, name, s)
    {
        int n = snprintf(buf + used, size - used, "%s%s:%s",
                         used > 0 ? "," : "", name,
                         cli_json_int(s, "workers", workers, sizeof(workers)));
        if (n < 0 || (size_t)n >= size - used) {
            break; /* cut short: the table stays readable */
        }
        used += (size_t)n;
    }
    if (used == 0) {
        snprintf(buf, size, "-");
    }
}

/* One line of the handover's progress. */
static void
cluster_print_handover(json_t *doc)
{
    json_t *ho = json_object_get(doc, "handover");
    char pending[32], moved[32], failed[32], vb[32];

    printf("handover pending %s moved %s failed %s",
           cli_json_int(ho, "pending", pending, sizeof(pending)),
           cli_json_int(ho, "moved", moved, sizeof(moved)),
           cli_json_int(ho, "failed", failed, sizeof(failed)));
    if (json_is_true(json_object_get(ho, "moving"))) {
        printf(" (vbucket %s to %s)",
               cli_json_int(ho, "vbucket", vb, sizeof(vb)),
               cli_json_str(ho, "target"));
    }
    printf("\n");
}

static void
cluster_print(json_t *doc)
{
    char epoch[32], ttl[32], node_id[32], vbuckets[32], fwd[32], failed[32];
    char homes[32];
    char services[512];
    json_t *ms = json_object_get(doc, "members"), *m;
    int wname = (int)strlen("NAME"), waddr = (int)strlen("ADDR");
    size_t i;

    printf("node     %s (%s)\n", cli_json_str(doc, "node"),
           cli_json_str(doc, "peer_addr"));
    printf("epoch    %s\n", cli_json_int(doc, "epoch", epoch, sizeof(epoch)));
    printf("fenced   %s\n",
           json_is_true(json_object_get(doc, "fenced")) ? "yes" : "no");
    printf("lease    %s (ttl %s s)\n", cli_json_str(doc, "lease"),
           cli_json_int(doc, "ttl_s", ttl, sizeof(ttl)));
    printf("members  %zu\n", json_array_size(ms));
    cluster_print_handover(doc);
    printf("\n");
    json_array_foreach(ms, i, m)
    {
        int n = (int)strlen(cli_json_str(m, "name"));
        int a = (int)strlen(cli_json_str(m, "addr"));
        wname = n > wname ? n : wname;
        waddr = a > waddr ? a : waddr;
    }
    printf("%-*s %-*s %7s %8s %5s %-4s %9s %6s %s\n", wname, "NAME", waddr,
           "ADDR", "NODE_ID", "VBUCKETS", "HOMES", "LINK", "FORWARDED",
           "FAILED", "SERVICES");
    json_array_foreach(ms, i, m)
    {
        cluster_services(m, services, sizeof(services));
        printf("%-*s %-*s %7s %8s %5s %-4s %9s %6s %s\n", wname,
               cli_json_str(m, "name"), waddr, cli_json_str(m, "addr"),
               cli_json_int(m, "node_id", node_id, sizeof(node_id)),
               cli_json_int(m, "vbuckets", vbuckets, sizeof(vbuckets)),
               cli_json_int(m, "homes", homes, sizeof(homes)),
               cli_json_str(m, "link"),
               cli_json_int(m, "forwarded", fwd, sizeof(fwd)),
               cli_json_int(m, "failed", failed, sizeof(failed)), services);
    }
}

/* ferry cluster rebalance [--wait MS] */
static int
cluster_rebalance(const struct cli_ctx *ctx, int argc, char **argv)
{
    uint64_t wait_ms = 0, waited = 0;
    json_t *doc;
    int rc;

    for (int i = 2; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
            wait_ms = strtoull(argv[++i], &end, 10);
            if (*end != '\0' || wait_ms > 3600000) {
                return cli_usage_error("cluster", "--wait: 0 to 3600000 ms");
            }
        } else {
            return cli_usage_error("cluster", "unexpected argument '%s'",
                                   argv[i]);
        }
    }
    for (;;) {
        json_int_t pending;
        bool moving;
        rc = cli_call_json(ctx, "cluster", CLUSTER_SERVICE, false, &doc);
        if (doc == NULL) {
            return cli_flush(rc);
        }
        if (!json_is_true(json_object_get(doc, "enabled"))) {
            printf("not clustered\n");
            json_decref(doc);
            return cli_flush(rc);
        }
        cluster_print_handover(doc);
        pending = json_integer_value(
            json_object_get(json_object_get(doc, "handover"), "pending"));
        moving = json_is_true(
            json_object_get(json_object_get(doc, "handover"), "moving"));
        json_decref(doc);
        if (pending == 0 && !moving) {
            return cli_flush(CLI_EXIT_OK);
        }
        if (waited >= wait_ms) {
            if (wait_ms > 0) {
                fprintf(stderr, "still %lld vbuckets to hand over after "
                                "%llu ms\n",
                        (long long)pending, (unsigned long long)wait_ms);
            }
            return cli_flush(wait_ms > 0 ? CLI_EXIT_FERRY : CLI_EXIT_OK);
        }
        usleep(200 * 1000);
        waited += 200;
    }
}

int
cmd_cluster(const struct cli_ctx *ctx, int argc, char **argv)
{
    bool raw = false;
    json_t *doc;
    int i, rc;

    if (argc > 1 && strcmp(argv[1], "rebalance") == 0) {
        return cluster_rebalance(ctx, argc, argv);
    }
    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cmd_cluster_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") == 0) {
            raw = true;
        } else {
            return cli_usage_error("cluster", "unexpected argument '%s'",
                                   argv[i]);
        }
    }
    rc = cli_call_json(ctx, "cluster", CLUSTER_SERVICE, raw, &doc);
    if (doc == NULL) {
        return cli_flush(rc);
    }
    if (!json_is_object(doc)) {
        fprintf(stderr, "PROTO: ferry.cluster sent no object\n");
        rc = CLI_EXIT_FERRY;
    } else if (!json_is_true(json_object_get(doc, "enabled"))) {
        printf("not clustered\n");
    } else {
        cluster_print(doc);
    }
    json_decref(doc);
    return cli_flush(rc);
}
