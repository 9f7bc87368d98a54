/* SPDX-License-Identifier: MIT */
/*
 * batch.c - building write batches on the loop thread: an array of
 * operations and one byte area for their keys and values, copied in so
 * the caller's buffers can go at once. The writer thread reads them; the
 * loop frees them after their callback.
 *
 * A freed batch is kept for the next one with its buffers (up to
 * BATCH_SPARE_MAX of them, their buffers no larger than the KEEP sizes),
 * so a queue push or a kv put allocates nothing once warm. Only the loop
 * thread makes and frees batches, so the spares need no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

#define BATCH_SPARE_MAX 256
#define BATCH_KEEP_DATA 4096 /* bytes of keys and values */
#define BATCH_KEEP_OPS 16

static struct store_batch *batch_spare; /* linked by next */
static size_t batch_n_spare;

struct store_batch *
store_batch_new(void)
{
    struct store_batch *b = batch_spare;
    struct store_op *ops;
    unsigned char *data;
    size_t cap_ops, cap;

    if (b == NULL) {
        return calloc(1, sizeof(struct store_batch));
    }
    batch_spare = b->next;
    batch_n_spare--;
    ops = b->ops;
    cap_ops = b->cap_ops;
    data = b->data;
    cap = b->cap;
    memset(b, 0, sizeof(*b));
    b->ops = ops;
    b->cap_ops = cap_ops;
    b->data = data;
    b->cap = cap;
    return b;
}

static void
batch_release(struct store_batch *b)
{
    free(b->ops);
    free(b->data);
    free(b);
}

void
store_batch_free(struct store_batch *b)
{
    if (b == NULL) {
        return;
    }
    if (batch_n_spare >= BATCH_SPARE_MAX || b->cap > BATCH_KEEP_DATA ||
        b->cap_ops > BATCH_KEEP_OPS) {
        batch_release(b);
        return;
    }
    b->next = batch_spare;
    batch_spare = b;
    batch_n_spare++;
}

void
store_batch_spares_release(void)
{
    while (batch_spare != NULL) {
        struct store_batch *b = batch_spare;
        batch_spare = b->next;
        batch_release(b);
    }
    batch_n_spare = 0;
}

size_t
store_batch_len(const struct store_batch *b)
{
    return b->n_ops;
}

void
store_list_push(struct store_list *l, struct store_batch *b)
{
    b->next = NULL;
    if (l->tail != NULL) {
        l->tail->next = b;
    } else {
        l->head = b;
    }
    l->tail = b;
}

/* Room for n more bytes in data. */
static ferry_err
batch_reserve(struct store_batch *b, size_t n)
{
    size_t cap;
    unsigned char *p;

    if (n > SIZE_MAX / 2 - b->len) {
        return FERRY_ENOMEM;
    }
    if (b->len + n <= b->cap) {
        return FERRY_OK;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return FERRY_OK;
}

static size_t
batch_copy(struct store_batch *b, const void *src, size_t n)
{
    size_t off = b->len;

    if (n > 0) {
        memcpy(b->data + off, src, n);
    }
    b->len += n;
    return off;
}

static ferry_err
batch_add(struct store_batch *b, enum store_op_kind kind, unsigned table,
          const void *key, size_t klen, const void *val, size_t vlen,
          enum store_cond cond, const void *expect, size_t elen)
{
    struct store_op *op;
    ferry_err rc;

    if (table >= STORE_MAX_TABLES || klen == 0 || klen > STORE_MAX_KEY ||
        cond > STORE_IF_PREFIX || (vlen > 0 && val == NULL) ||
        (elen > 0 && expect == NULL)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if (cond != STORE_IF_EQUALS && cond != STORE_IF_PREFIX) {
        elen = 0;
    }
    if (b->n_ops == b->cap_ops) {
        size_t cap = b->cap_ops ? b->cap_ops * 2 : 4;
        struct store_op *ops = realloc(b->ops, cap * sizeof(*ops));
        if (ops == NULL) {
            return FERRY_ENOMEM;
        }
        b->ops = ops;
        b->cap_ops = cap;
    }
    if (vlen > SIZE_MAX / 4 || elen > SIZE_MAX / 4) {
        return FERRY_ENOMEM;
    }
    rc = batch_reserve(b, klen + vlen + elen);
    if (rc != FERRY_OK) {
        return rc;
    }
    op = &b->ops[b->n_ops++];
    op->kind = (uint8_t)kind;
    op->table = (uint8_t)table;
    op->cond = (uint8_t)cond;
    op->klen = (uint32_t)klen;
    op->koff = batch_copy(b, key, klen);
    op->vlen = vlen;
    op->voff = batch_copy(b, val, vlen);
    op->elen = elen;
    op->eoff = batch_copy(b, expect, elen);
    op->fn = NULL;
    op->fn_arg = NULL;
    op->act = 0;
    op->hoff = op->hlen = 0;
    return FERRY_OK;
}

ferry_err
store_batch_put(struct store_batch *b, unsigned table, const void *key,
                size_t klen, const void *val, size_t vlen)
{
    return batch_add(b, STORE_OP_PUT, table, key, klen, val, vlen, STORE_IF_ANY,
                     NULL, 0);
}

ferry_err
store_batch_del(struct store_batch *b, unsigned table, const void *key,
                size_t klen)
{
    return batch_add(b, STORE_OP_DEL, table, key, klen, NULL, 0, STORE_IF_ANY,
                     NULL, 0);
}

ferry_err
store_batch_put_if(struct store_batch *b, unsigned table, const void *key,
                   size_t klen, const void *val, size_t vlen,
                   enum store_cond cond, const void *expect, size_t elen)
{
    return batch_add(b, STORE_OP_PUT, table, key, klen, val, vlen, cond, expect,
                     elen);
}

ferry_err
store_batch_del_if(struct store_batch *b, unsigned table, const void *key,
                   size_t klen, enum store_cond cond, const void *expect,
                   size_t elen)
{
    return batch_add(b, STORE_OP_DEL, table, key, klen, NULL, 0, cond, expect,
                     elen);
}

ferry_err
store_batch_hook(struct store_batch *b, unsigned table, const void *key,
                 size_t klen, store_hook_fn fn, void *arg)
{
    ferry_err rc;

    if (fn == NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    rc = batch_add(b, STORE_OP_HOOK, table, key, klen, NULL, 0, STORE_IF_ANY,
                   NULL, 0);
    if (rc == FERRY_OK) {
        b->ops[b->n_ops - 1].fn = fn;
        b->ops[b->n_ops - 1].fn_arg = arg;
    }
    return rc;
}

ferry_err
store_batch_revision(struct store_batch *b, unsigned table, const void *key,
                     size_t klen)
{
    ferry_err rc;

    if (table >= STORE_MAX_TABLES || klen == 0 || klen > STORE_MAX_KEY ||
        b->has_rev) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if ((rc = batch_reserve(b, klen)) != FERRY_OK) {
        return rc;
    }
    b->has_rev = true;
    b->rev_table = (uint8_t)table;
    b->rev_klen = (uint32_t)klen;
    b->rev_koff = batch_copy(b, key, klen);
    return FERRY_OK;
}
