/* SPDX-License-Identifier: MIT */
/*
 * cache_routes.h - GET, PUT and DELETE /v1/cache/{key} (ferry.cache over
 * HTTP; see cache_routes.c and docs/services.md).
 */
#ifndef FERRY_HTTP_CACHE_ROUTES_H
#define FERRY_HTTP_CACHE_ROUTES_H

#include "http/server.h"

/* Registers /v1/cache/ on s. */
void cache_routes_register(struct http_server *s);

#endif
