/* SPDX-License-Identifier: MIT */
/*
 * render.c - the big documents in slices (see render.h).
 *
 * A document is a sequence of phases. A phase is a fixed piece (a family
 * head, the JSON around the services array, the daemon-wide families) or
 * a pass over the services in name order. A pass goes a slice at a time:
 * one scan of the service table picks the next K names after the cursor
 * (a bounded max-heap, so O(n log K) with no copy of the table), they are
 * sorted and rendered, and the cursor moves to the last of them. K is
 * chosen per phase so that a slice is about RENDER_SLICE bytes. The
 * metrics parts come from metrics.c, the services' JSON from builtin.c and
 * metrics.c, so the sliced documents are the same as the whole ones.
 */
#include "http/render.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/builtin.h"
#include "broker/service.h"
#include "http/metrics.h"

/* Services a slice takes, by what one of them costs in bytes: one line
 * of a one-number family, one object of the JSON documents (two or three
 * names and about thirty figures), one histogram (eighteen lines). */
#define RENDER_K_LINE 256
#define RENDER_K_JSON 32
#define RENDER_K_HIST 16

/* Services one step may scan, over all its slices: bounds a step when
 * slices render little (the errors family of services without errors). */
#define RENDER_MAX_VISITS 16384

#define RENDER_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

void
render_init(struct render *r, struct broker *b, enum render_doc doc)
{
    memset(r, 0, sizeof(*r));
    r->b = b;
    r->doc = doc;
}

void
render_release(struct render *r)
{
    free(r->pick);
    r->pick = NULL;
    r->cap = 0;
}

const char *
render_content_type(enum render_doc doc)
{
    return doc == RENDER_METRICS ? METRICS_CONTENT_TYPE : "application/json";
}

static void
render_sift_down(struct service **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, big = i;
        if (l < n && strcmp(h[l]->name, h[big]->name) > 0) {
            big = l;
        }
        if (l + 1 < n && strcmp(h[l + 1]->name, h[big]->name) > 0) {
            big = l + 1;
        }
        if (big == i) {
            return;
        }
        struct service *t = h[i];
        h[i] = h[big];
        h[big] = t;
        i = big;
    }
}

static void
render_sift_up(struct service **h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (strcmp(h[p]->name, h[i]->name) >= 0) {
            return;
        }
        struct service *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int
render_cmp_name(const void *a, const void *b)
{
    const struct service *x = *(const struct service *const *)a;
    const struct service *y = *(const struct service *const *)b;

    return strcmp(x->name, y->name);
}

/*
 * The next k services after the cursor, in name order, into r->pick (valid
 * until the loop turn ends: the services are borrowed). Returns how many;
 * fewer than k ends the pass. *visits grows by the table's size.
 */
static ferry_err
render_pick(struct render *r, size_t k, size_t *n_out, size_t *visits)
{
    const struct smap *m = &r->b->services;
    size_t n = 0, pos = 0;
    void *val;

    if (r->cap < k) {
        struct service **p = realloc(r->pick, k * sizeof(*p));
        if (p == NULL) {
            return FERRY_ENOMEM;
        }
        r->pick = p;
        r->cap = k;
    }
    /* A max-heap of the k smallest names after the cursor. */
    while (smap_next(m, &pos, &val)) {
        struct service *svc = val;
        if (r->n_done > 0 && strcmp(svc->name, r->cursor) <= 0) {
            continue;
        }
        if (n < k) {
            r->pick[n] = svc;
            render_sift_up(r->pick, n++);
        } else if (strcmp(svc->name, r->pick[0]->name) < 0) {
            r->pick[0] = svc;
            render_sift_down(r->pick, n, 0);
        }
    }
    *visits += m->n;
    qsort(r->pick, n, sizeof(*r->pick), render_cmp_name);
    *n_out = n;
    return FERRY_OK;
}

/* Appends the JSON of doc (consumed) to out, with a comma before it when
 * it is not the first of its array. */
static ferry_err
render_json(struct buf *out, json_t *doc, bool comma)
{
    char *text;
    ferry_err err;

    if (doc == NULL) {
        return FERRY_ENOMEM;
    }
    text = json_dumps(doc, RENDER_JSON_FLAGS);
    json_decref(doc);
    if (text == NULL) {
        return FERRY_ENOMEM;
    }
    err = comma ? buf_append(out, ",", 1) : FERRY_OK;
    if (err == FERRY_OK) {
        err = buf_append(out, text, strlen(text));
    }
    free(text);
    return err;
}

/* Moves what f, opened by open_memstream(text, size), wrote to out, and
 * frees it. */
static ferry_err
render_flush(FILE *f, char **text, size_t *size, struct buf *out)
{
    ferry_err err = FERRY_OK;

    if (ferror(f) != 0) {
        err = FERRY_ENOMEM;
    }
    /* fclose() sets *text and *size for the last time. */
    if (fclose(f) != 0) {
        err = FERRY_ENOMEM;
    }
    if (err == FERRY_OK && *size > 0) {
        err = buf_append(out, *text, *size);
    }
    free(*text);
    *text = NULL;
    return err;
}

/* Ends a pass: the next phase starts afresh. */
static void
render_next_phase(struct render *r)
{
    r->phase++;
    r->n_done = 0;
    r->cursor[0] = '\0';
}

/* One slice of the services of the current pass. A JSON object lists
 * its service's workers, so k of them can be far more than a slice: the
 * slice ends after the object that passed RENDER_SLICE since start (out's
 * length when the step began), the rest of the picked ones next time. */
static ferry_err
render_services(struct render *r, struct buf *out, size_t k, size_t *visits,
                size_t start)
{
    size_t n, used;
    ferry_err err = render_pick(r, k, &n, visits);

    if (err != FERRY_OK) {
        return err;
    }
    used = n;
    if (r->doc == RENDER_METRICS) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (f == NULL) {
            return FERRY_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            metrics_write_part(f, r->phase, r->pick[i]);
        }
        err = render_flush(f, &text, &size, out);
    } else {
        for (size_t i = 0; i < n && err == FERRY_OK; i++) {
            json_t *o;
            if (r->doc == RENDER_SERVICES) {
                o = builtin_service_json(r->b, r->pick[i]);
            } else {
                o = metrics_service_json(r->b, r->pick[i]);
                r->requests += r->pick[i]->requests;
            }
            err = render_json(out, o, r->n_done + i > 0);
            if (err == FERRY_OK && i + 1 < n &&
                buf_len(out) - start >= RENDER_SLICE) {
                used = i + 1;
                break;
            }
        }
    }
    if (err != FERRY_OK) {
        return err;
    }
    if (used > 0) {
        memcpy(r->cursor, r->pick[used - 1]->name,
               strlen(r->pick[used - 1]->name) + 1);
    }
    r->n_done += used;
    r->written += used;
    if (used == n && n < k) {
        render_next_phase(r);
    }
    return FERRY_OK;
}

/* The exposition: per family its head, then a pass; then the tail. */
static ferry_err
render_metrics_unit(struct render *r, struct buf *out, size_t *visits,
                    size_t start)
{
    unsigned families = metrics_n_families();
    char *text = NULL;
    size_t size = 0;
    FILE *f;

    if (r->phase < families && r->in_pass) {
        size_t k =
            r->phase + 1 == families ? RENDER_K_HIST : RENDER_K_LINE;
        ferry_err err = render_services(r, out, k, visits, start);
        if (err == FERRY_OK && r->n_done == 0) {
            r->in_pass = false; /* the pass ended: next family's head */
        }
        return err;
    }
    f = open_memstream(&text, &size);
    if (f == NULL) {
        return FERRY_ENOMEM;
    }
    if (r->phase < families) {
        metrics_write_part(f, r->phase, NULL);
        r->in_pass = true;
    } else {
        metrics_write_tail(f, r->b);
        r->done = true;
    }
    return render_flush(f, &text, &size, out);
}

/* The JSON documents: {"services":[ a pass ] and the rest }. */
static ferry_err
render_json_unit(struct render *r, struct buf *out, size_t *visits,
                 size_t start)
{
    static const char head[] = "{\"services\":[";
    json_t *root;
    char *text;
    ferry_err err;

    switch (r->phase) {
    case 0:
        render_next_phase(r);
        return buf_append(out, head, sizeof(head) - 1);
    case 1:
        return render_services(r, out, RENDER_K_JSON, visits, start);
    default:
        break;
    }
    r->done = true;
    if (r->doc == RENDER_SERVICES) {
        json_t *more = builtin_remote_services_json(r->b);
        json_t *o;
        size_t i;
        err = more != NULL ? FERRY_OK : FERRY_ENOMEM;
        json_array_foreach(more, i, o) {
            if (err == FERRY_OK) {
                err = render_json(out, json_incref(o), r->written + i > 0);
            }
        }
        json_decref(more);
        return err != FERRY_OK ? err : buf_append(out, "]}", 2);
    }
    root = metrics_stats_root(r->b, r->requests);
    if (root == NULL) {
        return FERRY_ENOMEM;
    }
    text = json_dumps(root, RENDER_JSON_FLAGS);
    json_decref(root);
    if (text == NULL) {
        return FERRY_ENOMEM;
    }
    /* "{...}" of the other fields: after the array, without its '{'. */
    err = strcmp(text, "{}") == 0 ? buf_append(out, "]}", 2)
                                  : buf_append(out, "],", 2);
    if (err == FERRY_OK && strcmp(text, "{}") != 0) {
        err = buf_append(out, text + 1, strlen(text) - 1);
    }
    free(text);
    return err;
}

ferry_err
render_step(struct render *r, struct buf *out, bool *done)
{
    size_t start = buf_len(out), visits = 0;
    ferry_err err = FERRY_OK;

    while (!r->done && err == FERRY_OK &&
           buf_len(out) - start < RENDER_SLICE && visits < RENDER_MAX_VISITS) {
        err = r->doc == RENDER_METRICS
                  ? render_metrics_unit(r, out, &visits, start)
                  : render_json_unit(r, out, &visits, start);
    }
    *done = r->done;
    return err;
}

ferry_err
render_all(struct broker *b, enum render_doc doc, struct buf *out)
{
    struct render r;
    bool done = false;
    ferry_err err = FERRY_OK;

    render_init(&r, b, doc);
    while (!done && err == FERRY_OK) {
        err = render_step(&r, out, &done);
    }
    render_release(&r);
    return err;
}
