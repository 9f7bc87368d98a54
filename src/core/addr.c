/* SPDX-License-Identifier: MIT */
/*
 * addr.c - ferry address parsing ("host:port", "[v6]:port", "unix:/path").
 */
#include "core/addr.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static ferry_err
addr_parse_unix(const char *path, struct addr *out)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(sun->sun_path)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return FERRY_OK;
}

static ferry_err
addr_parse_inet(const char *text, struct addr *out)
{
    char host[ADDR_MAX_TEXT];
    const char *colon, *port, *h = text;
    size_t hlen;
    char *end;
    long pnum;
    struct addrinfo hints, *res = NULL;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            return FERRY_EINVALID_ARGUMENT;
        }
        h = text + 1;
        hlen = (size_t)(close - h);
        port = close + 2;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            return FERRY_EINVALID_ARGUMENT;
        }
        hlen = (size_t)(colon - text);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    pnum = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || pnum < 0 || pnum > 65535) {
        return FERRY_EINVALID_ARGUMENT;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return FERRY_OK;
}

ferry_err
addr_parse(const char *text, struct addr *out)
{
    struct addr a;
    ferry_err err;
    size_t n;

    if (text == NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    n = strlen(text);
    if (n == 0 || n >= sizeof(a.text)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    memset(&a, 0, sizeof(a));
    memcpy(a.text, text, n + 1);
    if (strncmp(text, "unix:", 5) == 0) {
        err = addr_parse_unix(text + 5, &a);
    } else {
        err = addr_parse_inet(text, &a);
    }
    if (err == FERRY_OK) {
        *out = a;
    }
    return err;
}

bool
addr_is_unix(const struct addr *a)
{
    return a->ss.ss_family == AF_UNIX;
}

bool
addr_is_local(const struct addr *a)
{
    if (a->ss.ss_family == AF_UNIX) {
        return true;
    }
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

const char *
addr_default(void)
{
    const char *env = getenv("FERRY_ADDR");

    return env != NULL && env[0] != '\0' ? env : ADDR_DEFAULT;
}
