/* SPDX-License-Identifier: MIT */
/*
 * control.c - the operator's commands, as JSON in and JSON out.
 *
 * Every command is checked whole before anything changes: a bad field
 * answers INVALID_ARGUMENT naming it, and leaves the daemon as it was.
 */
#include "broker/control.h"

#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/builtin.h"
#include "broker/session.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/log.h"
#include "proto/frame.h"

/* The string field name of cmd, or NULL with msg set. */
static const char *
control_string(json_t *cmd, const char *name, size_t *len, char *msg,
               size_t msg_size)
{
    json_t *v = json_object_get(cmd, name);

    if (!json_is_string(v)) {
        snprintf(msg, msg_size, "'%s' must be a string", name);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

/* The service named by cmd's "service", created when create is set. */
static struct service *
control_service(struct broker *b, json_t *cmd, bool create, ferry_err *err,
                char *msg, size_t msg_size)
{
    size_t len;
    const char *name = control_string(cmd, "service", &len, msg, msg_size);
    struct slice s;
    struct service *svc;

    *err = FERRY_EINVALID_ARGUMENT;
    if (name == NULL) {
        return NULL;
    }
    s.p = (const uint8_t *)name;
    s.len = len;
    if (!service_name_is_valid(s)) {
        snprintf(msg, msg_size,
                 "'service' must be 1 to %d bytes, none a control byte",
                 FRAME_MAX_NAME);
        return NULL;
    }
    if (service_name_is_reserved(s)) {
        snprintf(msg, msg_size, "service '%s' is ferryd's own", name);
        return NULL;
    }
    svc = broker_service(b, s, create, err);
    if (svc == NULL) {
        snprintf(msg, msg_size,
                 *err == FERRY_EUNKNOWN_SERVICE ? "unknown service '%s'"
                                                : "service '%s': cannot add",
                 name);
    }
    return svc;
}

static ferry_err
control_disable(struct broker *b, json_t *cmd, const char *who, json_t *reply,
                char *msg, size_t msg_size)
{
    json_t *fb = json_object_get(cmd, "fallback");
    const char *fallback = NULL;
    size_t len = 0;
    struct service *svc;
    ferry_err err;

    if (fb != NULL && !json_is_null(fb)) {
        fallback = control_string(cmd, "fallback", &len, msg, msg_size);
        if (fallback == NULL) {
            return FERRY_EINVALID_ARGUMENT;
        }
        if (len > CONTROL_MAX_FALLBACK || len > b->cfg->max_frame) {
            snprintf(msg, msg_size,
                     "'fallback' is %zu bytes; at most %d (and max_frame)", len,
                     CONTROL_MAX_FALLBACK);
            return FERRY_EINVALID_ARGUMENT;
        }
    }
    /* A service nobody serves yet may be disabled ahead of its workers. */
    svc = control_service(b, cmd, true, &err, msg, msg_size);
    if (svc == NULL) {
        return err;
    }
    if (service_disable(svc, fallback, len) != FERRY_OK) {
        snprintf(msg, msg_size, "out of memory");
        return FERRY_ENOMEM;
    }
    log_warn("service '%s' disabled by an operator (%s)%s", svc->name, who,
             fallback != NULL ? ", answering a fallback" : "");
    json_object_set_new(reply, "service", builtin_json_name(svc->name));
    json_object_set_new(reply, "fallback", json_boolean(fallback != NULL));
    return FERRY_OK;
}

static ferry_err
control_enable(struct broker *b, json_t *cmd, const char *who, json_t *reply,
               char *msg, size_t msg_size)
{
    ferry_err err;
    struct service *svc = control_service(b, cmd, false, &err, msg, msg_size);
    bool was = svc != NULL && svc->disabled;

    if (svc == NULL) {
        return err;
    }
    service_enable(svc);
    if (was) {
        log_warn("service '%s' enabled by an operator (%s)", svc->name, who);
    }
    json_object_set_new(reply, "service", builtin_json_name(svc->name));
    json_object_set_new(reply, "was_disabled", json_boolean(was));
    /* Nothing else would drop it once it has no reason to exist. */
    broker_maybe_free_service(b, svc);
    return FERRY_OK;
}

static ferry_err
control_drain_worker(struct broker *b, json_t *cmd, const char *who,
                     json_t *reply, char *msg, size_t msg_size)
{
    json_t *v = json_object_get(cmd, "worker");
    struct conn *c;
    struct session *s;
    char why[300];
    json_int_t id;

    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        snprintf(msg, msg_size,
                 "'worker' must be a worker id (see ferry services)");
        return FERRY_EINVALID_ARGUMENT;
    }
    id = json_integer_value(v);
    c = loop_conn(b->loop, (uint64_t)id);
    s = c != NULL ? c->data : NULL;
    if (s == NULL || s->role != FRAME_ROLE_WORKER) {
        snprintf(msg, msg_size, "no worker with id %lld", (long long)id);
        return FERRY_EINVALID_ARGUMENT;
    }
    json_object_set_new(reply, "worker", json_integer(id));
    json_object_set_new(reply, "name", builtin_json_name(c->name));
    json_object_set_new(reply, "was_draining", json_boolean(s->draining));
    json_object_set_new(reply, "held", json_integer(s->held_count));
    snprintf(why, sizeof(why), "drained by an operator, %s", who);
    session_drain(c, why);
    return FERRY_OK;
}

static json_t *
control_names(const char *const *names, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < n; i++) {
        json_array_append_new(a, json_string(names[i]));
    }
    return a;
}

static ferry_err
control_reload(struct broker *b, const char *who, json_t *reply, char *msg,
               size_t msg_size)
{
    struct config_changes ch;
    ferry_err err;

    log_info("reload asked by an operator (%s)", who);
    if (b->on_reload == NULL) {
        snprintf(msg, msg_size, "this daemon cannot reload");
        return FERRY_EINVALID_ARGUMENT;
    }
    err = b->on_reload(b, &ch, msg, msg_size);
    if (err != FERRY_OK) {
        return err;
    }
    json_object_set_new(reply, "applied",
                        control_names(ch.applied, ch.n_applied));
    json_object_set_new(reply, "need_restart",
                        control_names(ch.kept, ch.n_kept));
    return FERRY_OK;
}

ferry_err
control_run(struct broker *b, json_t *cmd, const char *who, json_t **reply,
            char *msg, size_t msg_size)
{
    const char *op;
    json_t *out;
    size_t len;
    ferry_err err;

    op = control_string(cmd, "op", &len, msg, msg_size);
    if (op == NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    out = json_object();
    if (out == NULL) {
        snprintf(msg, msg_size, "out of memory");
        return FERRY_ENOMEM;
    }
    if (strcmp(op, "disable") == 0) {
        err = control_disable(b, cmd, who, out, msg, msg_size);
    } else if (strcmp(op, "enable") == 0) {
        err = control_enable(b, cmd, who, out, msg, msg_size);
    } else if (strcmp(op, "drain-worker") == 0) {
        err = control_drain_worker(b, cmd, who, out, msg, msg_size);
    } else if (strcmp(op, "reload") == 0) {
        err = control_reload(b, who, out, msg, msg_size);
    } else if (strcmp(op, "leave") == 0) {
        err = FERRY_OK;
        if (b->on_leave == NULL || b->cluster == NULL) {
            snprintf(msg, msg_size,
                     "this ferryd is not in a cluster (stop it with "
                     "SIGTERM)");
            err = FERRY_EINVALID_ARGUMENT;
        } else if (b->shutting_down) {
            snprintf(msg, msg_size, "this ferryd is stopping already");
            err = FERRY_ESHUTTING_DOWN;
        } else {
            b->on_leave(b, who);
        }
    } else {
        snprintf(msg, msg_size,
                 "unknown op '%.64s' (expected drain-worker, disable, "
                 "enable, reload or leave)",
                 op);
        err = FERRY_EINVALID_ARGUMENT;
    }
    if (err != FERRY_OK) {
        json_decref(out);
        return err;
    }
    json_object_set_new(out, "op", json_string(op));
    json_object_set_new(out, "ok", json_true());
    *reply = out;
    return FERRY_OK;
}

ferry_err
control_parse(const void *text, size_t len, json_t **cmd, char *msg,
              size_t msg_size)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    if (doc == NULL) {
        snprintf(msg, msg_size, "bad JSON at line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        return FERRY_EINVALID_ARGUMENT;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(msg, msg_size, "the command must be a JSON object");
        return FERRY_EINVALID_ARGUMENT;
    }
    *cmd = doc;
    return FERRY_OK;
}

ferry_err
control_run_text(struct broker *b, const void *text, size_t len,
                 const char *who, char **reply_text, char *msg, size_t msg_size)
{
    json_t *cmd, *reply;
    ferry_err err = control_parse(text, len, &cmd, msg, msg_size);

    if (err != FERRY_OK) {
        return err;
    }
    err = control_run(b, cmd, who, &reply, msg, msg_size);
    json_decref(cmd);
    if (err != FERRY_OK) {
        return err;
    }
    *reply_text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (*reply_text == NULL) {
        snprintf(msg, msg_size, "out of memory");
        return FERRY_ENOMEM;
    }
    return FERRY_OK;
}
