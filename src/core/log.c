/* SPDX-License-Identifier: MIT */
/*
 * log.c - timestamped, levelled log lines on stderr. Each line is built in
 * memory and written with one call so lines never interleave.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_LVL_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void
log_set_level(enum log_level level)
{
    log_threshold = level;
}

bool
log_is_enabled(enum log_level level)
{
    return level >= log_threshold;
}

ferry_err
log_level_parse(const char *text, enum log_level *out)
{
    for (int i = 0; i <= LOG_LVL_ERROR; i++) {
        if (strcmp(text, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return FERRY_OK;
        }
    }
    return FERRY_EINVALID_ARGUMENT;
}

const char *
log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LVL_ERROR) {
        return "info";
    }
    return log_names[level];
}

void
log_write(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    if (!log_is_enabled(level)) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
                 ts.tv_nsec / 1000000, log_level_name(level));
    n += k > 0 ? (size_t)k : 0;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0) {
        n +=
            (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    }
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report a failing stderr. */
    }
}
