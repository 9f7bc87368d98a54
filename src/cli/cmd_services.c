/* SPDX-License-Identifier: MIT */
/*
 * cmd_services.c - "ferry services": calls the built-in service
 * ferry.services and prints its JSON as a table, one row per service and
 * an indented row per worker (and, in a cluster, per other node with
 * workers of it). ferryd shows it to the admin token when one
 * is set (core/access.h), so an operator passes --token. Every field may be missing: a missing one
 * prints as "-", so an older or newer daemon still gives a readable table.
 */
#include "cli/cmd_services.h"

#include <jansson.h>
#include <string.h>

#define SERVICES_SERVICE "ferry.services"

void
cmd_services_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry services [--json] [--addr ADDR] [--token TOKEN]\n\n"
            "Lists the services ferryd knows, with their workers, credit, "
            "requests in\n"
            "flight, queued requests, counters and latency percentiles; "
            "in a cluster,\n"
            "the other nodes with workers of each service (\"node\" "
            "rows).\n\n"
            "These are ferryd's internals (the built-in ferry.services): "
            "with admin_token\n"
            "set, ferryd shows them only to its admin token (on any "
            "address, its unix\n"
            "socket too); without it, to whoever may call (the caller "
            "token, when set).\n\n"
            "  --json           print the daemon's JSON as is\n"
            "  --token TOKEN    access token (default $FERRY_TOKEN)\n\n"
            "Exit status: 0 success, 1 error from ferryd, 2 usage error, "
            "3 connection\n"
            "error.\n");
}

/* A latency in microseconds, in a unit that keeps it short. */
static const char *
services_latency(json_t *lat, const char *field, char *buf, size_t size)
{
    json_t *v = json_object_get(lat, field);
    double us;

    if (!json_is_number(v)) {
        snprintf(buf, size, "-");
        return buf;
    }
    us = json_number_value(v);
    if (us < 1000.0) {
        snprintf(buf, size, "%.1fus", us);
    } else if (us < 1000000.0) {
        snprintf(buf, size, "%.2fms", us / 1000.0);
    } else {
        snprintf(buf, size, "%.2fs", us / 1000000.0);
    }
    return buf;
}

/* The sum of the counts in the errors object, or "-" when absent. */
static const char *
services_errors(json_t *svc, char *buf, size_t size)
{
    json_t *errors = json_object_get(svc, "errors");
    const char *name;
    json_t *v;
    long long sum = 0;

    if (json_is_integer(errors)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(errors));
        return buf;
    }
    if (!json_is_object(errors)) {
        snprintf(buf, size, "-");
        return buf;
    }
    json_object_foreach(errors, name, v)
    {
        if (json_is_integer(v)) {
            sum += json_integer_value(v);
        }
    }
    snprintf(buf, size, "%lld", sum);
    return buf;
}

static void
services_print_worker(json_t *w)
{
    char id[32], credit[32], in_flight[32], seen[32];
    json_t *draining = json_object_get(w, "draining");

    cli_json_int(w, "id", id, sizeof(id));
    cli_json_int(w, "credit", credit, sizeof(credit));
    cli_json_int(w, "in_flight", in_flight, sizeof(in_flight));
    cli_json_int(w, "last_seen_ms", seen, sizeof(seen));
    printf("  worker %-6s %-16s %-22s credit %-6s in flight %-6s "
           "last seen %sms ago%s%s\n",
           id, cli_json_str(w, "name"), cli_json_str(w, "addr"), credit,
           in_flight, seen, json_is_true(draining) ? " (draining)" : "",
           json_is_true(json_object_get(w, "ejected")) ? " (ejected)" : "");
}

/* Another node's workers of the service (a cluster: its "nodes"). */
static void
services_print_node(json_t *n)
{
    char workers[32], credit[32];

    printf("  node   %-16s workers %-6s credit %s\n", cli_json_str(n, "node"),
           cli_json_int(n, "workers", workers, sizeof(workers)),
           cli_json_int(n, "credit", credit, sizeof(credit)));
}

/* What is unusual about a service, after its row: "", or "  [disabled]",
 * "  [circuit open]"... */
static const char *
services_state(json_t *svc, char *buf, size_t size)
{
    const char *circuit = json_string_value(json_object_get(svc, "circuit"));
    bool disabled = json_is_true(json_object_get(svc, "disabled"));
    bool tripped = circuit != NULL && strcmp(circuit, "closed") != 0;

    if (!disabled && !tripped) {
        return "";
    }
    snprintf(buf, size, "  [%s%s%s%s]", disabled ? "disabled" : "",
             disabled && tripped ? ", " : "", tripped ? "circuit " : "",
             tripped ? circuit : "");
    return buf;
}

static void
services_print(json_t *services)
{
    char workers[32], credit[32], in_flight[32], queued[32], requests[32];
    char errors[32], p50[32], p99[32], state[64];
    int width = (int)strlen("SERVICE");
    size_t i, j;
    json_t *svc, *ws, *w, *lat;
    const char *name;

    json_array_foreach(services, i, svc)
    {
        name = cli_json_str(svc, "name");
        if ((int)strlen(name) > width) {
            width = (int)strlen(name);
        }
    }
    printf("%-*s %7s %7s %9s %7s %10s %7s %9s %9s\n", width, "SERVICE",
           "WORKERS", "CREDIT", "IN_FLIGHT", "QUEUED", "REQUESTS", "ERRORS",
           "P50", "P99");
    json_array_foreach(services, i, svc)
    {
        ws = json_object_get(svc, "workers");
        lat = json_object_get(svc, "latency_us");
        if (json_is_array(ws)) {
            snprintf(workers, sizeof(workers), "%zu", json_array_size(ws));
        } else {
            snprintf(workers, sizeof(workers), "-");
        }
        if (json_is_true(json_object_get(svc, "builtin")) &&
            json_array_size(ws) == 0) {
            snprintf(workers, sizeof(workers), "builtin");
        }
        printf("%-*s %7s %7s %9s %7s %10s %7s %9s %9s%s\n", width,
               cli_json_str(svc, "name"), workers,
               cli_json_int(svc, "credit", credit, sizeof(credit)),
               cli_json_int(svc, "in_flight", in_flight, sizeof(in_flight)),
               cli_json_int(svc, "queued", queued, sizeof(queued)),
               cli_json_int(svc, "requests", requests, sizeof(requests)),
               services_errors(svc, errors, sizeof(errors)),
               services_latency(lat, "p50", p50, sizeof(p50)),
               services_latency(lat, "p99", p99, sizeof(p99)),
               services_state(svc, state, sizeof(state)));
        json_array_foreach(ws, j, w)
        {
            services_print_worker(w);
        }
        json_array_foreach(json_object_get(svc, "nodes"), j, w)
        {
            services_print_node(w);
        }
    }
}

int
cmd_services(const struct cli_ctx *ctx, int argc, char **argv)
{
    json_t *root, *services;
    bool raw = false;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cmd_services_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") == 0) {
            raw = true;
        } else {
            return cli_usage_error("services", "unexpected argument '%s'",
                                   argv[i]);
        }
    }
    rc = cli_call_json(ctx, "services", SERVICES_SERVICE, raw, &root);
    if (root == NULL) {
        return cli_flush(rc);
    }
    services = json_object_get(root, "services");
    if (!json_is_array(services)) {
        fprintf(stderr, "PROTO: ferry.services sent no services list\n");
        rc = CLI_EXIT_FERRY;
    } else {
        services_print(services);
    }
    json_decref(root);
    return cli_flush(rc);
}
