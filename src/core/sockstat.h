/* SPDX-License-Identifier: MIT */
/*
 * sockstat.h - what the kernel knows of a TCP socket, for the memory
 * bounds: the bytes received on an HTTP connection, since h2o's libuv
 * binding keeps no count of its own. Alone in its file because
 * <linux/tcp.h>, which has the field, clashes with <netinet/tcp.h>.
 */
#ifndef FERRY_CORE_SOCKSTAT_H
#define FERRY_CORE_SOCKSTAT_H

#include <stdint.h>

/* Bytes received on TCP socket fd so far (TCP_INFO), 0 when unknown. */
uint64_t sockstat_bytes_received(int fd);

#endif
