/* SPDX-License-Identifier: MIT */
/*
 * sockstat.c - TCP_INFO's count of bytes received (see sockstat.h).
 */
#include "core/sockstat.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

uint64_t
sockstat_bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) +
                  sizeof(ti.tcpi_bytes_received)) {
        return 0;
    }
    return ti.tcpi_bytes_received;
}
