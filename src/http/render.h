/* SPDX-License-Identifier: MIT */
/*
 * render.h - the big documents of the HTTP side rendered in slices: the
 * Prometheus exposition (/metrics), the services document (/v1/services)
 * and the statistics document (/v1/stats, the SSE events). With thousands
 * of services one of them is tens of megabytes; rendered whole it would
 * hold the loop for hundreds of milliseconds, so every request in the
 * daemon would wait. A struct render instead gives the document a slice
 * at a time (about RENDER_SLICE bytes, a few milliseconds of work), and
 * its caller sends each slice on a later loop turn.
 *
 * Between slices the service table may change, so a render holds no
 * pointer to a service: it remembers the last name it rendered and picks
 * the next names after it (services are always in name order). A service
 * created meanwhile appears if its name comes later; one removed is left
 * out. Each service is rendered whole within one slice (a histogram's
 * buckets agree with its count). Memory per render: the struct, a slot
 * per service of the slice, and the output the caller keeps.
 */
#ifndef FERRY_HTTP_RENDER_H
#define FERRY_HTTP_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ferry.h"
#include "proto/frame.h"

struct broker;
struct service;

#define RENDER_SLICE (64 * 1024) /* bytes one step aims at */

/* The documents. */
enum render_doc {
    RENDER_METRICS,  /* Prometheus text 0.0.4 */
    RENDER_SERVICES, /* {"services":[...]}, as ferry.services */
    RENDER_STATS     /* the /v1/stats document */
};

/* One document being rendered; owned by whoever renders it. */
struct render {
    struct broker *b;                /* borrowed */
    enum render_doc doc;             /* which document */
    unsigned phase;                  /* the part being rendered */
    bool in_pass;                    /* a pass over the services began */
    char cursor[FRAME_MAX_NAME + 1]; /* the last name of this pass */
    size_t n_done;                   /* services rendered in this pass */
    size_t written;                  /* of them, in all passes */
    uint64_t requests;               /* /v1/stats: their requests, summed */
    struct service **pick;           /* owned: one slice's services */
    size_t cap;                      /* slots in pick */
    bool done;                       /* the whole document is out */
};

void render_init(struct render *r, struct broker *b, enum render_doc doc);
void render_release(struct render *r);

/*
 * Appends the next slice of the document to out (a few services' worth,
 * at least RENDER_SLICE bytes unless the document ends first). *done is
 * set once the last byte is out. FERRY_ENOMEM when it cannot (out may
 * then hold part of the slice).
 */
ferry_err render_step(struct render *r, struct buf *out, bool *done);

/* The whole document into out at once (tests, small tables). */
ferry_err render_all(struct broker *b, enum render_doc doc, struct buf *out);

/* The Content-Type of doc's answer. */
const char *render_content_type(enum render_doc doc);

#endif
