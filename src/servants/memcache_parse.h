/* SPDX-License-Identifier: MIT */
/*
 * memcache_parse.h - the memcached text protocol, one command at a time,
 * over the bytes a connection has read.
 *
 * memcache_parse() looks at the head of the input and says whether a whole
 * command is there (with its data block, for the storage commands), how
 * many bytes it takes, or which error memcached itself would answer. It
 * allocates nothing: keys, flags and data are slices of the input, valid
 * until those bytes are consumed. Bounds: a command line of at most
 * MC_LINE_MAX bytes (MC_GET_LINE_MAX for the get family, whose key lists
 * are long), keys of at most MC_KEY_MAX bytes, a data block of at most
 * item_max bytes (a larger one is swallowed and answered SERVER_ERROR
 * object too large for cache, as memcached does).
 */
#ifndef FERRY_SERVANTS_MEMCACHE_PARSE_H
#define FERRY_SERVANTS_MEMCACHE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_LINE_MAX 2048          /* a command line, "\r\n" included */
#define MC_GET_LINE_MAX (64 * 1024) /* ... of get/gets/gat/gats */
#define MC_KEY_MAX 250            /* memcached's key limit */
#define MC_META_FLAGS_MAX 24      /* flags of one meta command */

enum mc_kind {
    MC_GET = 1, MC_GETS, MC_GAT, MC_GATS,
    MC_SET, MC_ADD, MC_REPLACE, MC_APPEND, MC_PREPEND, MC_CAS,
    MC_DELETE, MC_INCR, MC_DECR, MC_TOUCH, MC_FLUSH_ALL,
    MC_VERSION, MC_STATS, MC_VERBOSITY, MC_QUIT,
    MC_MG, MC_MS, MC_MD, MC_MA, MC_MN,
    MC_KIND_COUNT
};

/* What memcache_parse() found at the head of the input. */
enum mc_result {
    MC_NEED = 0,  /* not a whole command yet: read more */
    MC_CMD = 1,   /* cmd is filled; consume cmd->used bytes */
    MC_ERR = 2,   /* answer cmd->err, consume cmd->used bytes, then skip
                     cmd->swallow more bytes (a data block too large) */
    MC_CLOSE = 3  /* garbage beyond the limits: close the connection */
};

/* One flag of a meta command: its letter and the token after it. */
struct mc_flag {
    const uint8_t *tok; /* borrowed; the bytes after the letter */
    uint16_t len;       /* bytes of tok */
    char c;             /* the flag letter */
};

struct mc_cmd {
    enum mc_kind kind;
    const uint8_t *key;    /* borrowed: the (first) key */
    size_t klen;
    const uint8_t *keys;   /* get family: every key, space separated */
    size_t keys_len;
    const uint8_t *data;   /* storage: the data block, without "\r\n" */
    size_t dlen;
    uint64_t cas;          /* cas: the unique; ma: the delta */
    uint64_t num;          /* incr/decr delta, verbosity level */
    int64_t exptime;       /* memcached's exptime (relative, absolute or
                              negative); flush_all: its delay */
    uint32_t flags;        /* client flags */
    bool noreply;
    bool has_num;          /* flush_all: a delay was given */
    unsigned n_flags;      /* meta: flags in flag[] */
    struct mc_flag flag[MC_META_FLAGS_MAX];
    const uint8_t *rkey;   /* meta with b: the key as sent (base64) */
    size_t rklen;
    bool b64;              /* meta: the key was sent in base64 (flag b),
                              key/klen are the decoded bytes in kbuf */
    uint8_t kbuf[MC_KEY_MAX];
    size_t used;           /* bytes of the input this command takes */
    uint64_t swallow;      /* MC_ERR: bytes to drop after used */
    const char *err;       /* MC_ERR: the whole answer line, "\r\n" ended,
                              or "" (the command asked for noreply) */
    size_t need;           /* MC_NEED: bytes the command needs in all,
                              when known (a data block), else 0 */
};

/*
 * Parses the command at the head of p[0..n). item_max bounds a data block.
 * See enum mc_result.
 */
enum mc_result memcache_parse(const uint8_t *p, size_t n, size_t item_max,
                              struct mc_cmd *cmd);

/* The command's name for stats ("get", "mg", ...). */
const char *memcache_kind_name(enum mc_kind k);

/* Parses a decimal u64 of exactly len bytes; false when it is not one. */
bool memcache_u64(const uint8_t *p, size_t len, uint64_t *out);
/* ... and a signed i64. */
bool memcache_i64(const uint8_t *p, size_t len, int64_t *out);

#endif
