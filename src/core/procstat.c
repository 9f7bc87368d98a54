/* SPDX-License-Identifier: MIT */
/*
 * procstat.c - the process's own figures (see procstat.h). Linux only:
 * resident pages from /proc/self/statm, the start time from
 * /proc/self/stat against /proc/uptime, CPU time from getrusage().
 */
#include "core/procstat.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static uint64_t
procstat_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    long page = sysconf(_SC_PAGESIZE);
    int n;

    if (f == NULL) {
        return 0;
    }
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2 || page <= 0) {
        return 0;
    }
    return (uint64_t)resident * (uint64_t)page;
}

/* Seconds since the process started: the system's uptime less the start
 * time in clock ticks after boot (field 22 of /proc/self/stat). */
static double
procstat_uptime(void)
{
    char line[1024], *p;
    double sys_up = 0.0;
    unsigned long long start = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    f = fopen("/proc/uptime", "r");
    if (f == NULL) {
        return 0.0;
    }
    if (fscanf(f, "%lf", &sys_up) != 1) {
        sys_up = 0.0;
    }
    fclose(f);
    f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return 0.0;
    }
    n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name may hold spaces and parentheses: skip past the
     * last ')', then field 3 (state) onwards; start time is field 22. */
    p = strrchr(line, ')');
    if (p == NULL || hz <= 0 ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
               "%*d %*d %*d %*d %*d %llu",
               &start) != 1) {
        return 0.0;
    }
    sys_up -= (double)start / (double)hz;
    return sys_up > 0.0 ? sys_up : 0.0;
}

void
procstat_read(struct procstat *ps)
{
    struct rusage ru;

    memset(ps, 0, sizeof(*ps));
    ps->rss_bytes = procstat_rss();
    ps->uptime_s = procstat_uptime();
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        ps->cpu_user_s =
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        ps->cpu_sys_s =
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
}
