/* SPDX-License-Identifier: MIT */
/*
 * errors.c - names and messages of ferry's error codes, expanded from the
 * single list in include/ferry.h so that code, name and text never drift.
 */
#include "ferry.h"

static const char *const err_names[FERRY__ERR_COUNT] = {
    [FERRY_OK] = "OK",
#define ERR_NAME(name, code, msg) [code] = #name,
    FERRY_ERRORS(ERR_NAME)
#undef ERR_NAME
};

static const char *const err_msgs[FERRY__ERR_COUNT] = {
    [FERRY_OK] = "success",
#define ERR_MSG(name, code, msg) [code] = msg,
    FERRY_ERRORS(ERR_MSG)
#undef ERR_MSG
};

const char *
ferry_errname(ferry_err err)
{
    if ((unsigned)err >= FERRY__ERR_COUNT || err_names[err] == NULL) {
        return "UNKNOWN_ERROR";
    }
    return err_names[err];
}

const char *
ferry_strerror(ferry_err err)
{
    if ((unsigned)err >= FERRY__ERR_COUNT || err_msgs[err] == NULL) {
        return "unknown error";
    }
    return err_msgs[err];
}
