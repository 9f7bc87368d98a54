/* SPDX-License-Identifier: MIT */
/*
 * auth.h - access tokens on the HTTP side: whether a request carries a
 * token ("Authorization: Bearer <token>" or "Ferry-Token: <token>"), and
 * the one 401 answer when it does not.
 *
 * Gateway calls ask for caller_token (admin_token works too). Internals
 * (the admin endpoints that show them, and ferry.services through the
 * gateway) follow the one rule of core/access.h, the same as on the
 * binary protocol. docs/http.md.
 */
#ifndef FERRY_HTTP_AUTH_H
#define FERRY_HTTP_AUTH_H

#include <h2o.h>
#include <stdbool.h>

struct config;

/*
 * Whether req may go on when token is required: always when token is off
 * (NULL or empty), else when the request carries token or admin_token
 * (which may be NULL). Compared in constant time.
 */
bool auth_is_allowed(h2o_req_t *req, const char *token,
                     const char *admin_token);

/*
 * Whether req may see internals by the rule of core/access.h: any token
 * it carries that the rule accepts, or, when it carries none, whether
 * they are open.
 */
bool auth_may_see_internals(h2o_req_t *req, const struct config *cfg);

/* Answers 401 UNAUTHORIZED (JSON error, WWW-Authenticate: Bearer). */
void auth_refuse(h2o_req_t *req);

#endif
