/* SPDX-License-Identifier: MIT */
/*
 * addr.h - parsing of ferry addresses, shared by ferryd's listeners and the
 * connecting side of libferry and the ferry command.
 *
 * An address is "host:port" (IPv4 or a name), "[v6]:port", or
 * "unix:/path/to/socket".
 */
#ifndef FERRY_CORE_ADDR_H
#define FERRY_CORE_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

#include "ferry.h"

#define ADDR_DEFAULT "127.0.0.1:7700"
#define ADDR_MAX_TEXT 256

struct addr {
    struct sockaddr_storage ss; /* the socket address */
    socklen_t len;              /* bytes of ss in use */
    char text[ADDR_MAX_TEXT];   /* the address as given, for logs */
};

/*
 * Parses text into *out, resolving a host name with getaddrinfo (first
 * result). Returns FERRY_EINVALID_ARGUMENT for anything malformed (missing
 * port, port out of range, socket path too long, unknown host).
 */
ferry_err addr_parse(const char *text, struct addr *out);

/* Whether the address is a Unix socket. */
bool addr_is_unix(const struct addr *a);

/* Whether the address is loopback (127/8, ::1) or a Unix socket. */
bool addr_is_local(const struct addr *a);

/* The address callers use when none is given: $FERRY_ADDR, else the
 * default. Never NULL. */
const char *addr_default(void);

#endif
