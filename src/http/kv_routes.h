/* SPDX-License-Identifier: MIT */
/* kv_routes.h - /v1/kv/{key} and /v1/kv?prefix=: ferry.kv over HTTP. */
#ifndef FERRY_HTTP_KV_ROUTES_H
#define FERRY_HTTP_KV_ROUTES_H

#include "http/server.h"

/* Adds the /v1/kv handler to s. */
void kv_routes_register(struct http_server *s);

#endif
