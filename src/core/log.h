/* SPDX-License-Identifier: MIT */
/*
 * log.h - ferryd's log lines on stderr.
 *
 * One line per event: an ISO 8601 UTC timestamp with milliseconds, the
 * level, then the message, lowercase with its subject quoted and no final
 * period. The level threshold is a process setting chosen at start-up, not
 * per-loop state.
 */
#ifndef FERRY_CORE_LOG_H
#define FERRY_CORE_LOG_H

#include <stdbool.h>

#include "ferry.h"

enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO = 1,
    LOG_LVL_WARN = 2,
    LOG_LVL_ERROR = 3
};

void log_set_level(enum log_level level);
bool log_is_enabled(enum log_level level);

/* Parses "debug", "info", "warn" or "error"; FERRY_EINVALID_ARGUMENT
 * otherwise. */
ferry_err log_level_parse(const char *text, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                         \
    do {                                                                       \
        if (log_is_enabled(LOG_LVL_DEBUG)) {                                   \
            log_write(LOG_LVL_DEBUG, __VA_ARGS__);                             \
        }                                                                      \
    } while (0)
#define log_info(...) log_write(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_LVL_ERROR, __VA_ARGS__)

#endif
