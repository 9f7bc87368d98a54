/* SPDX-License-Identifier: MIT */
/*
 * id_routes.h - GET /v1/id?count=N and GET /v1/id/{id} (ferry.id over
 * HTTP; see id_routes.c and docs/services.md).
 */
#ifndef FERRY_HTTP_ID_ROUTES_H
#define FERRY_HTTP_ID_ROUTES_H

#include "http/server.h"

/* Registers /v1/id on s. */
void id_routes_register(struct http_server *s);

#endif
