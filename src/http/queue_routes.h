/* SPDX-License-Identifier: MIT */
/* queue_routes.h - /v1/queues: ferry.queue over HTTP (docs/http.md). */
#ifndef FERRY_HTTP_QUEUE_ROUTES_H
#define FERRY_HTTP_QUEUE_ROUTES_H

#include "http/server.h"

/* Adds the /v1/queues handler to s. */
void queue_routes_register(struct http_server *s);

#endif
