/* SPDX-License-Identifier: MIT */
/*
 * builtin.c - the services ferryd answers itself: echo, ferry.services,
 * ferry.cluster (this node's view of its cluster, the broker's
 * describe_cluster hook, cluster.h) and
 * ferry.admin (the operator's commands of control.c).
 *
 * Each is an in-daemon backend (backend.h) that answers at once inside
 * call(): its REPLY goes straight into the caller's sink (a binary
 * caller's output buffer, the HTTP gateway's callback) and the broker
 * counts it like any other service's. ferry.services and ferry.cluster
 * answer only a caller that may see internals, ferry.admin only one that may give
 * commands: each door decided that by the rules of core/access.h (the
 * session's flags for a binary caller, the icall's for the gateway).
 */
#include "broker/builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/control.h"
#include "broker/icall.h"
#include "broker/session.h"
#include "core/access.h"
#include "core/conn.h"
#include "core/config.h"
#include "core/hist.h"

/* echo: the payload back, at once. */
static void
builtin_echo_call(struct backend *be, struct bcall *c)
{
    bcall_reply(c, c->payload.p, c->payload.len);
}

json_t *
builtin_json_name(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j != NULL) {
        return j;
    }
    copy = strdup(s);
    if (copy == NULL) {
        return NULL;
    }
    for (char *p = copy; *p != '\0'; p++) {
        if ((unsigned char)*p >= 0x80) {
            *p = '?';
        }
    }
    j = json_string(copy);
    free(copy);
    return j;
}

static int
builtin_set(json_t *obj, const char *key, json_t *val)
{
    return val == NULL ? -1 : json_object_set_new(obj, key, val);
}

json_t *
builtin_service_json(struct broker *b, const struct service *svc)
{
    json_t *o = json_object(), *errors = json_object(), *lat = json_object();
    const struct backend *be = svc->backend;
    int rc = 0;

    (void)b;
    if (o == NULL || errors == NULL || lat == NULL) {
        goto out_free;
    }
    for (unsigned code = 1; code < FERRY__ERR_COUNT; code++) {
        if (svc->errors[code] > 0) {
            rc |= builtin_set(errors, ferry_errname((ferry_err)code),
                              json_integer((json_int_t)svc->errors[code]));
        }
    }
    rc |= builtin_set(lat, "p50",
                      json_real(hist_percentile(&svc->latency, 0.50)));
    rc |= builtin_set(lat, "p90",
                      json_real(hist_percentile(&svc->latency, 0.90)));
    rc |= builtin_set(lat, "p99",
                      json_real(hist_percentile(&svc->latency, 0.99)));
    rc |= builtin_set(lat, "p999",
                      json_real(hist_percentile(&svc->latency, 0.999)));
    rc |= builtin_set(o, "name", builtin_json_name(svc->name));
    rc |= builtin_set(o, "builtin", json_boolean(be->ops->call != NULL));
    rc |= builtin_set(o, "backend", json_string(be->ops->kind));
    /* The worker pool's describe() fills these in. */
    rc |= builtin_set(o, "workers", json_array());
    rc |= builtin_set(o, "credit", json_integer(0));
    rc |= builtin_set(o, "in_flight", json_integer(svc->in_flight));
    rc |= builtin_set(o, "queued", json_integer(svc->queued));
    rc |= builtin_set(o, "disabled", json_boolean(svc->disabled));
    rc |= builtin_set(o, "fallbacks", json_integer((json_int_t)svc->fallbacks));
    rc |= builtin_set(o, "requests", json_integer((json_int_t)svc->requests));
    rc |= builtin_set(o, "replies", json_integer((json_int_t)svc->replies));
    rc |= builtin_set(o, "retries", json_integer((json_int_t)svc->retries));
    rc |= builtin_set(o, "retries_denied",
                      json_integer((json_int_t)svc->retries_denied));
    rc |= builtin_set(o, "ejections", json_integer((json_int_t)svc->ejections));
    rc |= builtin_set(o, "circuit",
                      builtin_json_name(service_circuit_name(svc->circuit)));
    rc |= builtin_set(o, "circuit_opens",
                      json_integer((json_int_t)svc->circuit_opens));
    rc |= json_object_set_new(o, "errors", errors);
    rc |= json_object_set_new(o, "latency_us", lat);
    if (rc == 0 && be->ops->describe != NULL) {
        rc |= be->ops->describe(svc->backend, svc, o);
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;

out_free:
    json_decref(o);
    json_decref(errors);
    json_decref(lat);
    return NULL;
}

/* The object of a service only other nodes serve (no record here): the
 * fields of builtin_service_json, this node's all zero, and its nodes. */
static json_t *
builtin_remote_service_json(const char *name, json_t *nodes)
{
    json_t *o = json_pack(
        "{s:s, s:b, s:s, s:[], s:i, s:i, s:i, s:b, s:i, s:i, s:i, s:i, s:i, "
        "s:i, s:s, s:i, s:{}, s:{s:f, s:f, s:f, s:f}, s:b, s:O}",
        "name", name, "builtin", 0, "backend", "workers", "workers", "credit",
        0, "in_flight", 0, "queued", 0, "disabled", 0, "fallbacks", 0,
        "requests", 0, "replies", 0, "retries", 0, "retries_denied", 0,
        "ejections", 0, "circuit", "closed", "circuit_opens", 0, "errors",
        "latency_us", "p50", 0.0, "p90", 0.0, "p99", 0.0, "p999", 0.0,
        "elsewhere_only", 1, "nodes", nodes);

    return o;
}

static int
builtin_cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *
builtin_remote_services_json(struct broker *b)
{
    json_t *arr = json_array(), *by_name;
    const char **names;
    const char *name;
    json_t *nodes;
    size_t n = 0;

    if (arr == NULL || b->describe_remote_only == NULL) {
        return arr;
    }
    by_name = b->describe_remote_only(b);
    names = by_name != NULL
                ? malloc((json_object_size(by_name) + 1) * sizeof(*names))
                : NULL;
    if (names == NULL) {
        json_decref(by_name);
        json_decref(arr);
        return NULL;
    }
    json_object_foreach(by_name, name, nodes) {
        names[n++] = name;
    }
    qsort(names, n, sizeof(*names), builtin_cmp_key);
    for (size_t i = 0; i < n; i++) {
        json_t *o = builtin_remote_service_json(
            names[i], json_object_get(by_name, names[i]));
        if (json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    }
    free(names);
    json_decref(by_name);
    return arr;
}

static int
builtin_cmp_name(const void *a, const void *b)
{
    const struct service *x = *(const struct service *const *)a;
    const struct service *y = *(const struct service *const *)b;

    return strcmp(x->name, y->name);
}

json_t *
builtin_services_json(struct broker *b)
{
    size_t n = b->services.n, k = 0, pos = 0;
    struct service **v = malloc((n ? n : 1) * sizeof(*v));
    json_t *root = json_object(), *arr = json_array(), *more;
    void *val;

    if (v == NULL || root == NULL || arr == NULL) {
        goto out_free;
    }
    while (smap_next(&b->services, &pos, &val) && k < n) {
        v[k++] = val;
    }
    qsort(v, k, sizeof(*v), builtin_cmp_name);
    for (size_t i = 0; i < k; i++) {
        if (json_array_append_new(arr, builtin_service_json(b, v[i])) != 0) {
            goto out_free;
        }
    }
    free(v);
    /* Then the services only other nodes serve. */
    more = builtin_remote_services_json(b);
    if (more == NULL || json_array_extend(arr, more) != 0) {
        json_decref(more);
        json_decref(arr);
        json_decref(root);
        return NULL;
    }
    json_decref(more);
    if (json_object_set_new(root, "services", arr) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;

out_free:
    free(v);
    json_decref(arr);
    json_decref(root);
    return NULL;
}

/* Answers c with doc (taking it; NULL: out of memory) when the caller may
 * see internals (decided at its door by the rule of core/access.h), else
 * with UNAUTHORIZED naming what service needs. */
static void
builtin_reply_internals(struct bcall *c, const char *service, json_t *doc)
{
    char msg[160];
    char *text;

    if (!c->internals) {
        json_decref(doc);
        snprintf(msg, sizeof(msg), "%s shows ferryd's internals: it needs %s",
                 service, access_internals_need(c->b->cfg));
        bcall_error(c, FERRY_EUNAUTHORIZED, msg);
        return;
    }
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    bcall_reply(c, text, strlen(text));
    free(text);
}

/* ferry.services: the JSON document of every service. */
static void
builtin_services_call(struct backend *be, struct bcall *c)
{
    builtin_reply_internals(
        c, "ferry.services",
        c->internals ? builtin_services_json(c->b) : NULL);
}

/* ferry.cluster: this node's view of its cluster, {"enabled":false} on a
 * single node (the document of /v1/cluster). */
static void
builtin_cluster_call(struct backend *be, struct bcall *c)
{
    builtin_reply_internals(
        c, "ferry.cluster",
        !c->internals                    ? NULL
        : c->b->describe_cluster != NULL ? c->b->describe_cluster(c->b)
                                         : json_pack("{s:b}", "enabled", 0));
}

/* ferry.admin: the operator's commands, for a caller allowed to give them
 * (the admin token, or the unix socket when no admin token is set). */
static void
builtin_admin_call(struct backend *be, struct bcall *c)
{
    char who[600], msg[CONFIG_ERR_SIZE];
    char *text;
    ferry_err err;

    if (!c->admin) {
        bcall_error(c, FERRY_EUNAUTHORIZED,
                    "admin commands need the admin token (or, with none "
                    "set, the unix socket)");
        return;
    }
    bcall_who(c, who, sizeof(who));
    msg[0] = '\0';
    err = control_run_text(c->b, c->payload.p, c->payload.len, who, &text, msg,
                           sizeof(msg));
    if (err != FERRY_OK) {
        bcall_error(c, err, msg[0] != '\0' ? msg : NULL);
        return;
    }
    bcall_reply(c, text, strlen(text));
    free(text);
}

static const struct backend_ops builtin_echo_ops = {
    .kind = "builtin",
    .call = builtin_echo_call,
};

static const struct backend_ops builtin_services_ops = {
    .kind = "builtin",
    .call = builtin_services_call,
};

static const struct backend_ops builtin_cluster_ops = {
    .kind = "builtin",
    .call = builtin_cluster_call,
};

static const struct backend_ops builtin_admin_ops = {
    .kind = "builtin",
    .call = builtin_admin_call,
};

ferry_err
builtin_register_all(struct broker *b)
{
    static const struct {
        const char *name;
        const struct backend_ops *ops;
    } builtins[] = {
        {"echo", &builtin_echo_ops},
        {"ferry.services", &builtin_services_ops},
        {"ferry.cluster", &builtin_cluster_ops},
        {"ferry.admin", &builtin_admin_ops},
    };
    ferry_err err;

    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        b->builtins[i].ops = builtins[i].ops;
        err = broker_add_backend(b, builtins[i].name, &b->builtins[i]);
        if (err != FERRY_OK) {
            return err;
        }
    }
    return FERRY_OK;
}
