/* SPDX-License-Identifier: MIT */
/*
 * procstat.h - figures about the ferryd process itself for /v1/stats and
 * /metrics: resident memory, CPU time and uptime, read from /proc/self and
 * getrusage() when asked (never on the request path).
 */
#ifndef FERRY_CORE_PROCSTAT_H
#define FERRY_CORE_PROCSTAT_H

#include <stdint.h>

struct procstat {
    double uptime_s;    /* seconds since the process started */
    uint64_t rss_bytes; /* resident set size */
    double cpu_user_s;  /* CPU time in user mode */
    double cpu_sys_s;   /* CPU time in the kernel */
};

/* Fills ps; a figure that cannot be read is 0. */
void procstat_read(struct procstat *ps);

#endif
