/* SPDX-License-Identifier: MIT */
/*
 * notify.c - service manager notifications through libsystemd's
 * sd_notify(). See notify.h. A failed notification is logged at debug
 * level only: ferryd serves the same with or without a manager.
 */
#include "core/notify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "core/log.h"

static void
notify_send(const char *state)
{
    int rc = sd_notify(0, state);

    if (rc < 0) {
        log_debug("sd_notify '%s': error %d", state, -rc);
    }
}

void
notify_ready(const char *status)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
    notify_send(msg);
}

void
notify_reloading(void)
{
    struct timespec ts;
    char msg[96];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL +
                 (unsigned long long)ts.tv_nsec / 1000ULL);
    notify_send(msg);
}

void
notify_stopping(void)
{
    notify_send("STOPPING=1");
}

void
notify_watchdog(void)
{
    notify_send("WATCHDOG=1");
}

uint64_t
notify_watchdog_ms(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
        return 0;
    }
    return usec / 2000 > 0 ? usec / 2000 : 1;
}
