/* SPDX-License-Identifier: MIT */
/*
 * dashboard.h - the dashboard page and its assets on the HTTP port: / and
 * /assets/...
 */
#ifndef FERRY_HTTP_DASHBOARD_H
#define FERRY_HTTP_DASHBOARD_H

#include "http/server.h"

/* Registers the dashboard paths on s; called by http_server_new(). */
void dashboard_register(struct http_server *s);

#endif
