/* SPDX-License-Identifier: MIT */
/*
 * admin.h - the admin endpoints on the HTTP port: /healthz, /readyz,
 * /v1/services, /v1/stats, /v1/stats/stream and /metrics.
 */
#ifndef FERRY_HTTP_ADMIN_H
#define FERRY_HTTP_ADMIN_H

#include "http/server.h"

/* Registers the admin paths on s; called by http_server_new(). */
void admin_register(struct http_server *s);

#endif
