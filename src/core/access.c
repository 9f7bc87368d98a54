/* SPDX-License-Identifier: MIT */
/*
 * access.c - the rules of access.h: internals and the operator's
 * commands, from the token settings and the token a client showed.
 */
#include "core/access.h"

#include <string.h>

#include "core/config.h"
#include "core/ctcompare.h"

bool
access_token_matches(const void *token, size_t len, const char *want)
{
    return config_token_is_set(want) &&
           ctcompare_equal(token, len, want, strlen(want));
}

bool
access_may_see_internals(const struct config *cfg, const void *token,
                         size_t len)
{
    bool admin = access_token_matches(token, len, cfg->admin_token);
    bool caller = access_token_matches(token, len, cfg->caller_token);

    if (config_token_is_set(cfg->admin_token)) {
        return admin;
    }
    if (config_token_is_set(cfg->caller_token)) {
        return caller;
    }
    return true;
}

bool
access_may_command(const struct config *cfg, const void *token, size_t len,
                   bool on_unix)
{
    if (config_token_is_set(cfg->admin_token)) {
        return access_token_matches(token, len, cfg->admin_token);
    }
    return on_unix;
}

const char *
access_internals_need(const struct config *cfg)
{
    if (config_token_is_set(cfg->admin_token)) {
        return "the admin token";
    }
    if (config_token_is_set(cfg->caller_token)) {
        return "the caller token";
    }
    return "no token";
}
