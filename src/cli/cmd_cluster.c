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

#include <string.h>

#define CLUSTER_SERVICE "ferry.cluster"

void
cmd_cluster_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry cluster [--json] [--addr ADDR] [--token TOKEN]\n\n"
            "Shows the cluster as the node at ADDR sees it: its name, the "
            "epoch of its\n"
            "vbucket map, whether it is fenced, its etcd lease, then every "
            "member with\n"
            "its address, node id, vbuckets owned, peer link (self, up, "
            "down), requests\n"
            "forwarded to it and failed there, and its services with their "
            "worker counts.\n"
            "On a single node it prints \"not clustered\".\n\n"
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

static void
cluster_print(json_t *doc)
{
    char epoch[32], ttl[32], node_id[32], vbuckets[32], fwd[32], failed[32];
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
    printf("members  %zu\n\n", json_array_size(ms));
    json_array_foreach(ms, i, m)
    {
        int n = (int)strlen(cli_json_str(m, "name"));
        int a = (int)strlen(cli_json_str(m, "addr"));
        wname = n > wname ? n : wname;
        waddr = a > waddr ? a : waddr;
    }
    printf("%-*s %-*s %7s %8s %-4s %9s %6s %s\n", wname, "NAME", waddr, "ADDR",
           "NODE_ID", "VBUCKETS", "LINK", "FORWARDED", "FAILED", "SERVICES");
    json_array_foreach(ms, i, m)
    {
        cluster_services(m, services, sizeof(services));
        printf("%-*s %-*s %7s %8s %-4s %9s %6s %s\n", wname,
               cli_json_str(m, "name"), waddr, cli_json_str(m, "addr"),
               cli_json_int(m, "node_id", node_id, sizeof(node_id)),
               cli_json_int(m, "vbuckets", vbuckets, sizeof(vbuckets)),
               cli_json_str(m, "link"),
               cli_json_int(m, "forwarded", fwd, sizeof(fwd)),
               cli_json_int(m, "failed", failed, sizeof(failed)), services);
    }
}

int
cmd_cluster(const struct cli_ctx *ctx, int argc, char **argv)
{
    bool raw = false;
    json_t *doc;
    int i, rc;

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
