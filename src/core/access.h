/* SPDX-License-Identifier: MIT */
/*
 * access.h - who may do what beyond calling a service, decided here once
 * for every door: the binary protocol (from the token of HELLO) and HTTP
 * (from the token of each request).
 *
 * Internals are what shows ferryd's insides: ferry.services (the binary
 * REQUEST, POST /v1/call/ferry.services, a route to it), GET
 * /v1/services, /v1/stats, /v1/stats/stream and /metrics. The rule: with
 * admin_token set, only the admin token; without it, what a call needs,
 * which is caller_token when that is set, and nothing when it is not. The
 * worker token never opens them. docs/http.md, "Access tokens".
 *
 * The operator's commands (ferry.admin): with admin_token set, only the
 * admin token, on any listener; without it, only a client on a unix
 * socket, whose folder admits ferryd's own user alone.
 *
 * Tokens are compared in constant time, and every configured token is
 * compared every time, so the time taken does not tell which was close.
 */
#ifndef FERRY_CORE_ACCESS_H
#define FERRY_CORE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

struct config;

/* Whether token (len bytes; len 0: none shown) is want, a token setting
 * that is on; a setting that is off never matches. */
bool access_token_matches(const void *token, size_t len, const char *want);

/* Whether a client that showed token may see internals. */
bool access_may_see_internals(const struct config *cfg, const void *token,
                              size_t len);

/* Whether a binary client that showed token in HELLO, on a unix socket or
 * not, may give the operator's commands. */
bool access_may_command(const struct config *cfg, const void *token,
                        size_t len, bool on_unix);

/* What internals need, for a refusal's message: "the admin token" or "the
 * caller token" (or "no token" when they are open). */
const char *access_internals_need(const struct config *cfg);

#endif
