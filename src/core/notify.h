/* SPDX-License-Identifier: MIT */
/*
 * notify.h - telling the service manager (systemd) what ferryd is doing.
 *
 * Under a unit of Type=notify, systemd waits for READY=1 before it counts
 * ferryd as started (so units ordered after it find the socket there), is
 * told STOPPING=1 when a graceful stop begins and RELOADING=1 ... READY=1
 * around a reload. With WatchdogSec= set, ferryd's loop sends WATCHDOG=1
 * at half the interval, so a stalled loop gets ferryd restarted. Without
 * $NOTIFY_SOCKET every call does nothing.
 */
#ifndef FERRY_CORE_NOTIFY_H
#define FERRY_CORE_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line. */
void notify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC, as newer systemd asks). */
void notify_reloading(void);

/* STOPPING=1. */
void notify_stopping(void);

/* WATCHDOG=1: the loop is alive. */
void notify_watchdog(void);

/* Milliseconds between WATCHDOG=1 messages (half of WatchdogSec=), or 0
 * when the service manager asks for none. */
uint64_t notify_watchdog_ms(void);

#endif
