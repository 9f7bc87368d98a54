/* SPDX-License-Identifier: MIT */
/*
 * builtin.c - the services ferryd answers itself: echo, ferry.services and
 * ferry.admin (the operator's commands of control.c).
 *
 * A built-in handler runs on the request path in place of a worker and
 * writes its REPLY straight into the caller's output buffer; the router
 * counts it like any other service. ferry.services answers only a caller
 * that may see internals, ferry.admin only one that may give commands:
 * each door decided that by the rules of core/access.h (the session's
 * flags for a binary caller, the icall's for the HTTP gateway).
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
#include "core/hist.h"

ferry_err
builtin_reply(struct broker *b, struct conn *caller, uint64_t id,
              const void *data, size_t len)
{
    uint8_t *p;

    if (caller == NULL) {
        icall_complete(b, id, FERRY_OK, data, len);
        return FERRY_OK;
    }
    /* Too big for the caller's max_frame: it gets TOO_BIG instead, which
     * ends the request as an answer does. */
    if (!session_takes(caller->data, len)) {
        session_send_too_big(caller, id, len);
        return FERRY_OK;
    }
    p = conn_out_prepare(caller, FRAME_HEADER_SIZE + len);
    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    frame_write_reply_header(p, id, (uint32_t)len);
    if (len > 0) {
        memcpy(p + FRAME_HEADER_SIZE, data, len);
    }
    conn_out_commit(caller, FRAME_HEADER_SIZE + len);
    return FERRY_OK;
}

static ferry_err
builtin_echo(struct broker *b, struct conn *caller, uint64_t id,
             struct slice payload, char *msg, size_t msg_size)
{
    return builtin_reply(b, caller, id, payload.p, payload.len);
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

static json_t *
builtin_worker_json(struct broker *b, const struct wreg *reg)
{
    const struct conn *c = reg->worker->conn;
    uint64_t now = loop_now(b->loop);
    json_t *w = json_object();
    int rc = 0;

    if (w == NULL) {
        return NULL;
    }
    rc |= builtin_set(w, "id", json_integer((json_int_t)c->id));
    rc |= builtin_set(w, "name", builtin_json_name(c->name));
    rc |= builtin_set(w, "addr", builtin_json_name(c->peer));
    rc |= builtin_set(w, "credit", json_integer(reg->credit));
    rc |= builtin_set(w, "in_flight", json_integer(reg->in_flight));
    rc |= builtin_set(
        w, "last_seen_ms",
        json_integer((json_int_t)(now > c->last_rx ? now - c->last_rx : 0)));
    rc |= builtin_set(w, "draining", json_boolean(reg->worker->draining));
    rc |= builtin_set(w, "ejected",
                      json_boolean(service_reg_is_ejected(reg->svc, reg)));
    rc |= builtin_set(w, "probing", json_boolean(reg->worker->probing));
    rc |= builtin_set(w, "ejections", json_integer(reg->worker->ejections));
    if (rc != 0) {
        json_decref(w);
        return NULL;
    }
    return w;
}

json_t *
builtin_service_json(struct broker *b, const struct service *svc)
{
    json_t *o = json_object(), *workers = json_array();
    json_t *errors = json_object(), *lat = json_object();
    uint64_t credit = 0;
    int rc = 0;

    if (o == NULL || workers == NULL || errors == NULL || lat == NULL) {
        goto out_free;
    }
    for (size_t i = 0; i < svc->n_regs; i++) {
        const struct wreg *reg = svc->regs[i];
        credit += reg->credit;
        if (json_array_append_new(workers, builtin_worker_json(b, reg)) != 0) {
            goto out_free;
        }
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
    rc |= builtin_set(o, "builtin", json_boolean(svc->builtin != NULL));
    rc |= json_object_set_new(o, "workers", workers);
    rc |= builtin_set(o, "credit", json_integer((json_int_t)credit));
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
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;

out_free:
    json_decref(o);
    json_decref(workers);
    json_decref(errors);
    json_decref(lat);
    return NULL;
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
    json_t *root = json_object(), *arr = json_array();
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

/* Whether the caller (a conn, or else icall id) may see internals, as
 * decided at its door by the rule of core/access.h. */
static bool
builtin_may_see_internals(struct broker *b, struct conn *caller, uint64_t id)
{
    const struct session *s;
    const struct icall *ic;

    if (caller != NULL) {
        s = caller->data;
        return s != NULL && s->internals;
    }
    ic = map_get(&b->icalls, id);
    return ic != NULL && ic->internals;
}

static ferry_err
builtin_services(struct broker *b, struct conn *caller, uint64_t id,
                 struct slice payload, char *msg, size_t msg_size)
{
    json_t *doc;
    char *text;
    ferry_err err;

    if (!builtin_may_see_internals(b, caller, id)) {
        snprintf(msg, msg_size,
                 "ferry.services shows ferryd's internals: it needs %s",
                 access_internals_need(b->cfg));
        return FERRY_EUNAUTHORIZED;
    }
    doc = builtin_services_json(b);
    if (doc == NULL) {
        return FERRY_ENOMEM;
    }
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        return FERRY_ENOMEM;
    }
    err = builtin_reply(b, caller, id, text, strlen(text));
    free(text);
    return err;
}

/* The operator's commands, for a caller allowed to give them (the admin
 * token, or the unix socket when no admin token is set). */
static ferry_err
builtin_admin(struct broker *b, struct conn *caller, uint64_t id,
              struct slice payload, char *msg, size_t msg_size)
{
    struct session *s = caller != NULL ? caller->data : NULL;
    char who[600];
    char *text;
    ferry_err err;

    if (s == NULL || !s->admin) {
        snprintf(msg, msg_size,
                 "admin commands need the admin token (or, with none set, "
                 "the unix socket)");
        return FERRY_EUNAUTHORIZED;
    }
    snprintf(who, sizeof(who), "'%s' at '%s'", caller->name, caller->peer);
    err =
        control_run_text(b, payload.p, payload.len, who, &text, msg, msg_size);
    if (err != FERRY_OK) {
        return err;
    }
    err = builtin_reply(b, caller, id, text, strlen(text));
    free(text);
    return err;
}

ferry_err
builtin_register_all(struct broker *b)
{
    static const struct {
        const char *name;
        service_builtin_cb cb;
    } builtins[] = {
        {"echo", builtin_echo},
        {"ferry.services", builtin_services},
        {"ferry.admin", builtin_admin},
    };

    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        struct slice name = slice_str(builtins[i].name);
        struct service *svc = service_new(b->loop, name, builtins[i].cb);
        if (svc == NULL) {
            return FERRY_ENOMEM;
        }
        if (smap_put(&b->services, svc->name, svc->name_len, svc) != FERRY_OK) {
            service_free(svc);
            return FERRY_ENOMEM;
        }
    }
    return FERRY_OK;
}
