/* SPDX-License-Identifier: MIT */
/*
 * memcache_parse.c - see memcache_parse.h. The answers to bad lines are
 * the ones Debian's memcached 1.6 gives (tests/integration/
 * test_memcache_diff.py compares them).
 */
#include "servants/memcache_parse.h"

#include <string.h>

#define MC_TOKENS_MAX 24

static const char E_ERROR[] = "ERROR\r\n";
static const char E_FORMAT[] = "CLIENT_ERROR bad command line format\r\n";
static const char E_CHUNK[] = "CLIENT_ERROR bad data chunk\r\n";
static const char E_TOO_LARGE[] = "SERVER_ERROR object too large for cache\r\n";
static const char E_DELTA[] = "CLIENT_ERROR invalid numeric delta argument\r\n";
static const char E_EXPTIME[] = "CLIENT_ERROR invalid exptime argument\r\n";
static const char E_DECODE[] = "CLIENT_ERROR error decoding key\r\n";
static const char E_DELETE[] = "CLIENT_ERROR bad command line format.  "
                               "Usage: delete <key> [noreply]\r\n";

static const char *const kind_names[MC_KIND_COUNT] = {
    [MC_GET] = "get", [MC_GETS] = "gets", [MC_GAT] = "gat",
    [MC_GATS] = "gats", [MC_SET] = "set", [MC_ADD] = "add",
    [MC_REPLACE] = "replace", [MC_APPEND] = "append",
    [MC_PREPEND] = "prepend", [MC_CAS] = "cas", [MC_DELETE] = "delete",
    [MC_INCR] = "incr", [MC_DECR] = "decr", [MC_TOUCH] = "touch",
    [MC_FLUSH_ALL] = "flush_all", [MC_VERSION] = "version",
    [MC_STATS] = "stats", [MC_VERBOSITY] = "verbosity", [MC_QUIT] = "quit",
    [MC_MG] = "mg", [MC_MS] = "ms", [MC_MD] = "md", [MC_MA] = "ma",
    [MC_MN] = "mn",
};

const char *
memcache_kind_name(enum mc_kind k)
{
    return k > 0 && k < MC_KIND_COUNT ? kind_names[k] : "?";
}

struct tok {
    const uint8_t *p;
    size_t len;
};

bool
memcache_u64(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)p[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool
memcache_i64(const uint8_t *p, size_t len, int64_t *out)
{
    uint64_t v;
    bool neg = len > 0 && p[0] == '-';

    if (!memcache_u64(p + neg, len - neg, &v) ||
        v > (uint64_t)INT64_MAX) {
        return false;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool
tok_is(const struct tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->p, s, n) == 0;
}

static size_t
tokenize(const uint8_t *p, size_t n, struct tok *t, size_t max)
{
    size_t k = 0, i = 0;

    while (i < n && k < max) {
        size_t s;
        while (i < n && p[i] == ' ') {
            i++;
        }
        if (i == n) {
            break;
        }
        s = i;
        while (i < n && p[i] != ' ') {
            i++;
        }
        t[k].p = p + s;
        t[k].len = i - s;
        k++;
    }
    /* A line with more tokens than max keeps the rest in the last. */
    if (k == max && i < n) {
        t[k - 1].len = (size_t)(p + n - t[k - 1].p);
    }
    return k;
}

/* memcached answers nothing, not even an error, to a command that asked
 * for noreply. */
static enum mc_result
fail(struct mc_cmd *cmd, const char *err, size_t used)
{
    cmd->err = cmd->noreply ? "" : err;
    cmd->used = used;
    return MC_ERR;
}

static bool
is_get_family(const uint8_t *p, size_t n)
{
    return (n >= 4 && (memcmp(p, "get ", 4) == 0 || memcmp(p, "gat ", 4) == 0)) ||
           (n >= 5 &&
            (memcmp(p, "gets ", 5) == 0 || memcmp(p, "gats ", 5) == 0));
}

static enum mc_kind
kind_of(const struct tok *t)
{
    static const struct {
        const char *name;
        enum mc_kind kind;
    } table[] = {
        {"get", MC_GET}, {"gets", MC_GETS}, {"gat", MC_GAT},
        {"gats", MC_GATS}, {"set", MC_SET}, {"add", MC_ADD},
        {"replace", MC_REPLACE}, {"append", MC_APPEND},
        {"prepend", MC_PREPEND}, {"cas", MC_CAS}, {"delete", MC_DELETE},
        {"incr", MC_INCR}, {"decr", MC_DECR}, {"touch", MC_TOUCH},
        {"flush_all", MC_FLUSH_ALL}, {"version", MC_VERSION},
        {"stats", MC_STATS}, {"verbosity", MC_VERBOSITY}, {"quit", MC_QUIT},
        {"mg", MC_MG}, {"ms", MC_MS}, {"md", MC_MD}, {"ma", MC_MA},
        {"mn", MC_MN},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (tok_is(t, table[i].name)) {
            return table[i].kind;
        }
    }
    return 0;
}

/* The data block of a storage command: line bytes, then dlen + "\r\n". */
static enum mc_result
take_data(const uint8_t *p, size_t n, size_t line, uint64_t dlen,
          size_t item_max, struct mc_cmd *cmd)
{
    if (dlen > item_max) {
        cmd->swallow = dlen + 2;
        return fail(cmd, E_TOO_LARGE, line);
    }
    if (n - line < dlen + 2) {
        cmd->need = line + (size_t)dlen + 2;
        return MC_NEED;
    }
    cmd->used = line + (size_t)dlen + 2;
    if (p[line + dlen] != '\r' || p[line + dlen + 1] != '\n') {
        cmd->err = cmd->noreply ? "" : E_CHUNK;
        return MC_ERR;
    }
    cmd->data = p + line;
    cmd->dlen = (size_t)dlen;
    return MC_CMD;
}

static int
b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 src (padded, a multiple of 4) into dst of room bytes;
 * returns the length, or 0 when it is not base64 or does not fit. */
static size_t
b64_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t room)
{
    size_t out = 0;

    if (n == 0 || n % 4 != 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        unsigned pad = 0;
        for (unsigned j = 0; j < 4; j++) {
            if (src[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad > 0 || (v[j] = b64_value(src[i + j])) < 0) {
                return 0;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (out + 3 - pad > room) {
            return 0;
        }
        dst[out++] = (uint8_t)(w >> 16);
        if (pad < 2) {
            dst[out++] = (uint8_t)(w >> 8);
        }
        if (pad < 1) {
            dst[out++] = (uint8_t)w;
        }
    }
    return out;
}

static enum mc_result
parse_meta(const uint8_t *p, size_t n, size_t line, struct tok *t, size_t k,
           size_t item_max, struct mc_cmd *cmd)
{
    size_t first = 2;
    uint64_t dlen = 0;

    if (cmd->kind == MC_MN) {
        cmd->used = line;
        return MC_CMD;
    }
    if (k < 2) {
        return fail(cmd, E_ERROR, line);
    }
    if (t[1].len > MC_KEY_MAX) { /* base64 or not, as memcached */
        return fail(cmd, E_FORMAT, line);
    }
    cmd->key = t[1].p;
    cmd->klen = t[1].len;
    if (cmd->kind == MC_MS) {
        if (k < 3 || !memcache_u64(t[2].p, t[2].len, &dlen)) {
            return fail(cmd, E_FORMAT, line);
        }
        first = 3;
    }
    for (size_t i = first; i < k; i++) {
        if (cmd->n_flags == MC_META_FLAGS_MAX) {
            return fail(cmd, E_FORMAT, line);
        }
        if (t[i].p[0] == 'b') {
            cmd->b64 = true;
        }
        cmd->flag[cmd->n_flags].c = (char)t[i].p[0];
        cmd->flag[cmd->n_flags].tok = t[i].p + 1;
        cmd->flag[cmd->n_flags].len = (uint16_t)(t[i].len - 1);
        cmd->n_flags++;
    }
    if (cmd->b64) {
        cmd->rkey = t[1].p;
        cmd->rklen = t[1].len;
        cmd->klen = b64_decode(t[1].p, t[1].len, cmd->kbuf, MC_KEY_MAX);
        cmd->key = cmd->kbuf;
        if (cmd->klen == 0) {
            if (cmd->kind == MC_MS) {
                /* the data block is still read and dropped */
                enum mc_result r = take_data(p, n, line, dlen, item_max, cmd);
                if (r != MC_CMD) {
                    return r;
                }
                cmd->err = E_DECODE;
                return MC_ERR;
            }
            return fail(cmd, E_DECODE, line);
        }
    }
    if (cmd->kind == MC_MS) {
        return take_data(p, n, line, dlen, item_max, cmd);
    }
    cmd->used = line;
    return MC_CMD;
}

enum mc_result
memcache_parse(const uint8_t *p, size_t n, size_t item_max, struct mc_cmd *cmd)
{
    struct tok t[MC_TOKENS_MAX];
    size_t limit, scan, line, len, k;
    const uint8_t *nl;
    uint64_t v;
    int64_t sv;

    memset(cmd, 0, offsetof(struct mc_cmd, flag));
    cmd->rkey = NULL;
    cmd->rklen = 0;
    cmd->b64 = false;
    cmd->used = 0;
    cmd->swallow = 0;
    cmd->err = NULL;
    cmd->need = 0;
    if (n == 0) {
        return MC_NEED;
    }
    limit = is_get_family(p, n) ? MC_GET_LINE_MAX : MC_LINE_MAX;
    scan = n < limit ? n : limit;
    nl = memchr(p, '\n', scan);
    if (nl == NULL) {
        return n >= limit ? MC_CLOSE : MC_NEED;
    }
    line = (size_t)(nl - p) + 1;
    len = line - 1;
    if (len > 0 && p[len - 1] == '\r') {
        len--;
    }
    k = tokenize(p, len, t, MC_TOKENS_MAX);
    if (k == 0) {
        return fail(cmd, E_ERROR, line);
    }
    cmd->kind = kind_of(&t[0]);
    if (cmd->kind == 0) {
        return fail(cmd, E_ERROR, line);
    }
    if (k > 1 && tok_is(&t[k - 1], "noreply")) {
        cmd->noreply = true;
    }
    switch (cmd->kind) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS: {
        size_t first = 1;
        const uint8_t *q, *end = p + len;
        cmd->noreply = false;
        if (cmd->kind == MC_GAT || cmd->kind == MC_GATS) {
            if (k < 2) {
                return fail(cmd, E_ERROR, line);
            }
            if (!memcache_i64(t[1].p, t[1].len, &cmd->exptime)) {
                return fail(cmd, E_EXPTIME, line);
            }
            first = 2;
            if (k == 2) { /* memcached answers a bare END */
                cmd->used = line;
                return MC_CMD;
            }
        }
        if (k <= first) {
            return fail(cmd, E_ERROR, line);
        }
        cmd->noreply = false;
        /* Every key, bounded; the tokens above stop at MC_TOKENS_MAX. */
        cmd->keys = t[first].p;
        cmd->keys_len = (size_t)(end - t[first].p);
        for (q = cmd->keys; q < end;) {
            const uint8_t *s;
            while (q < end && *q == ' ') {
                q++;
            }
            s = q;
            while (q < end && *q != ' ') {
                q++;
            }
            if (q - s > MC_KEY_MAX) {
                return fail(cmd, E_FORMAT, line);
            }
        }
        cmd->key = t[first].p;
        cmd->klen = t[first].len;
        cmd->used = line;
        return MC_CMD;
    }
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS: {
        size_t want = cmd->kind == MC_CAS ? 6 : 5;
        if (k != want && k != want + 1) {
            return fail(cmd, E_ERROR, line);
        }
        if (t[1].len > MC_KEY_MAX ||
            !memcache_u64(t[2].p, t[2].len, &v) ||
            !memcache_i64(t[3].p, t[3].len, &cmd->exptime) ||
            !memcache_i64(t[4].p, t[4].len, &sv) || sv < 0 ||
            (cmd->kind == MC_CAS &&
             !memcache_u64(t[5].p, t[5].len, &cmd->cas))) {
            return fail(cmd, E_FORMAT, line);
        }
        cmd->flags = (uint32_t)v;
        cmd->key = t[1].p;
        cmd->klen = t[1].len;
        return take_data(p, n, line, (uint64_t)sv, item_max, cmd);
    }
    case MC_INCR:
    case MC_DECR:
        if (k != 3 && k != 4) {
            return fail(cmd, E_ERROR, line);
        }
        if (t[1].len > MC_KEY_MAX) {
            return fail(cmd, E_FORMAT, line);
        }
        if (!memcache_u64(t[2].p, t[2].len, &cmd->num)) {
            return fail(cmd, E_DELTA, line);
        }
        break;
    case MC_DELETE:
        if (k < 2 || k > 4) {
            return fail(cmd, E_ERROR, line);
        }
        if (t[1].len > MC_KEY_MAX) {
            return fail(cmd, E_FORMAT, line);
        }
        if ((k == 3 && !cmd->noreply && !tok_is(&t[2], "0")) ||
            (k == 4 && (!tok_is(&t[2], "0") || !cmd->noreply))) {
            return fail(cmd, E_DELETE, line);
        }
        break;
    case MC_TOUCH:
        if (k != 3 && k != 4) {
            return fail(cmd, E_ERROR, line);
        }
        if (t[1].len > MC_KEY_MAX) {
            return fail(cmd, E_FORMAT, line);
        }
        if (!memcache_i64(t[2].p, t[2].len, &cmd->exptime)) {
            return fail(cmd, E_EXPTIME, line);
        }
        break;
    case MC_FLUSH_ALL:
        if (k > 3) {
            return fail(cmd, E_ERROR, line);
        }
        if (k - cmd->noreply == 2) {
            if (!memcache_i64(t[1].p, t[1].len, &cmd->exptime)) {
                return fail(cmd, E_EXPTIME, line);
            }
            cmd->has_num = true;
        }
        cmd->used = line;
        return MC_CMD;
    case MC_VERBOSITY:
        if (k != 2 && k != 3) {
            return fail(cmd, E_ERROR, line);
        }
        if (!memcache_u64(t[1].p, t[1].len, &cmd->num)) {
            return fail(cmd, E_FORMAT, line);
        }
        cmd->used = line;
        return MC_CMD;
    case MC_STATS:
        cmd->noreply = false;
        /* "stats reset" is answered RESET; no other group is kept. */
        if (k == 2 && tok_is(&t[1], "reset")) {
            cmd->has_num = true;
        } else if (k > 1) {
            return fail(cmd, E_ERROR, line);
        }
        /* fallthrough */
    case MC_VERSION:
    case MC_QUIT:
        cmd->noreply = false;
        cmd->used = line;
        return MC_CMD;
    case MC_MG:
    case MC_MS:
    case MC_MD:
    case MC_MA:
    case MC_MN:
        cmd->noreply = false;
        return parse_meta(p, n, line, t, k, item_max, cmd);
    default:
        break;
    }
    cmd->key = t[1].p;
    cmd->klen = t[1].len;
    cmd->used = line;
    return MC_CMD;
}
