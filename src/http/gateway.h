/* SPDX-License-Identifier: MIT */
/*
 * gateway.h - HTTP requests into services: POST /v1/call/{service} with
 * the body as payload, and the REST routes of the config
 * (`GET /fib/{n} fib`), both through the broker's internal calls, so they
 * share dispatch, deadlines and statistics with binary callers.
 */
#ifndef FERRY_HTTP_GATEWAY_H
#define FERRY_HTTP_GATEWAY_H

#include "http/server.h"

/* Registers /v1/call/ and the route handler on s. */
void gateway_register(struct http_server *s);

/* Registers the last handler of "/": a JSON 404 for every path nobody
 * took. */
void gateway_register_fallback(struct http_server *s);

#endif
