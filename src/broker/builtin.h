/* SPDX-License-Identifier: MIT */
/*
 * builtin.h - services answered by ferryd itself: `echo` (the payload
 * back), `ferry.services` (JSON describing every service, for the
 * `ferry services` command), `ferry.cluster` (this node's view of its
 * cluster, for `ferry cluster`) and `ferry.admin` (the operator's
 * commands, for `ferry admin`). They go through the same router and counters
 * as worker-served services, each through its in-daemon backend
 * (backend.h); no worker may register their names.
 */
#ifndef FERRY_BROKER_BUILTIN_H
#define FERRY_BROKER_BUILTIN_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

struct broker;
struct conn;

/* Creates the built-in services in b, each on its backend in
 * b->builtins. */
ferry_err builtin_register_all(struct broker *b);

/* The ferry.services document; NULL when out of memory. The caller owns
 * the result (json_decref). */
json_t *builtin_services_json(struct broker *b);

/* The objects of the services only other nodes of the cluster serve (no
 * record here yet), by name, as they end ferry.services: an empty array
 * on a single node; NULL when out of memory. */
json_t *builtin_remote_services_json(struct broker *b);

struct service;

/* One service's object of the ferry.services document (the HTTP side
 * renders /v1/services a service at a time); NULL when out of memory. The
 * caller owns it. */
json_t *builtin_service_json(struct broker *b, const struct service *svc);

/* A JSON string of a peer-chosen name: jansson refuses invalid UTF-8, so
 * such bytes become '?'. NULL when out of memory. */
json_t *builtin_json_name(const char *s);

#endif
