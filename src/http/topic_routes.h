/* SPDX-License-Identifier: MIT */
/* topic_routes.h - /v1/topics: ferry.topic over HTTP, a publish and a
 * stream of Server-Sent Events (docs/http.md). */
#ifndef FERRY_HTTP_TOPIC_ROUTES_H
#define FERRY_HTTP_TOPIC_ROUTES_H

#include "http/server.h"

/* Adds the /v1/topics handler to s, and its shutdown hook. */
void topic_routes_register(struct http_server *s);

#endif
