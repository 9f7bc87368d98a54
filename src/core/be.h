/* SPDX-License-Identifier: MIT */
/*
 * be.h - big-endian integers in byte buffers, the byte order of every
 * frame and payload ferry sends (docs/protocol.md). Each put returns the
 * byte after what it wrote. Header only, no libuv: libferry, the daemon
 * and the fuzz targets all use it.
 */
#ifndef FERRY_CORE_BE_H
#define FERRY_CORE_BE_H

#include <stdint.h>

static inline uint8_t *
be_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *
be_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static inline uint8_t *
be_put_u64(uint8_t *p, uint64_t v)
{
    be_put_u32(p, (uint32_t)(v >> 32));
    return be_put_u32(p + 4, (uint32_t)v);
}

static inline uint16_t
be_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
be_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t
be_get_u64(const uint8_t *p)
{
    return (uint64_t)be_get_u32(p) << 32 | be_get_u32(p + 4);
}

#endif
