/* SPDX-License-Identifier: MIT */
/*
 * mem.c - the daemon's memory budget: the allocator's count of live bytes,
 * sampled from the prepare hook, refusals near max_memory, closing the
 * connections that hold the most past the shedding mark, and giving freed
 * memory back to the system (see mem.h).
 *
 * Why the allocator's count and not a sum of ferryd's own buffers: h2o
 * keeps unfinished request bodies (every HTTP/2 stream, every HTTP/1.1
 * body in progress) in buffers of its own that ferryd never sees grow;
 * the allocator sees everything, at the cost of a call (mallinfo2() walks
 * the free lists of glibc's arenas) that is made at most once per loop
 * turn and millisecond. Choosing whom to close needs attribution, which
 * is done only then: a binary conn holds its input and output buffers,
 * an HTTP conn what h2o buffers for it (http/server.c).
 */
#include "core/mem.h"

#include <malloc.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"

#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif

#ifdef MEM_ASAN
/* The sanitizer runtime's count of live bytes (its allocator_interface.h
 * is not installed with Debian's gcc). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define MEM_MMAP_THRESHOLD (256 * 1024)      /* larger blocks are mmap'd */
#define MEM_TRIM_THRESHOLD (4 * 1024 * 1024) /* free top kept by malloc */
#define MEM_SCAN_STEP (4 * 1024 * 1024)      /* growth that scans HTTP conns */
#define MEM_SCAN_MS 1000                     /* ... and at least this often */
#define MEM_SHED_GAP_MS 2 /* closed conns are freed within this */
#define MEM_TRIM_STEP (16 * 1024 * 1024) /* fall in use that trims */
#define MEM_TRIM_GAP_MS 1000 /* at most one malloc_trim per second */
#define MEM_SHED_MAX 256     /* conns closed per shedding at most */
#define MEM_RESAMPLE_BYTES (1024 * 1024) /* binary reads between samples */

void
mem_tune(void)
{
#ifndef MEM_ASAN
    /*
     * glibc raises its mmap threshold each time an mmap'd block is freed
     * (up to 32 MiB), after which large frames come from the heap and a
     * heap fragmented by them keeps its pages. A fixed threshold keeps
     * every block above 256 KiB (large frames, grown buffers, h2o bodies)
     * mmap'd, so freeing it gives it back at once. The bufpool's 64 KiB
     * blocks stay on the heap.
     */
    mallopt(M_MMAP_THRESHOLD, MEM_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, MEM_TRIM_THRESHOLD);
#endif
}

uint64_t
mem_live_bytes(void)
{
#ifdef MEM_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();

    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#endif
}

static uint64_t
mem_mark(const struct loop *l, unsigned sixteenths)
{
    return l->cfg->max_memory / 16 * sixteenths;
}

bool
mem_is_shedding(const struct loop *l)
{
    return l->cfg->max_memory != 0 &&
           l->mem.used >= mem_mark(l, MEM_SHED_16THS);
}

bool
mem_is_tight(struct loop *l, size_t more)
{
    if (l->cfg->max_memory == 0 ||
        l->mem.used + more <= mem_mark(l, MEM_REFUSE_16THS)) {
        return false;
    }
    l->mem.refused++;
    return true;
}

/* The open binary conn holding the most buffer bytes, or NULL. */
static struct conn *
mem_biggest_conn(struct loop *l, uint64_t *bytes)
{
    struct conn *best = NULL;
    uint64_t most = 0;

    for (struct list *n = l->all.next; n != &l->all; n = n->next) {
        struct conn *c = container_of(n, struct conn, all_node);
        uint64_t b;

        if (c->state == CONN_CLOSING || c->destroyed) {
            continue;
        }
        b = conn_held_bytes(c);
        if (b > most) {
            most = b;
            best = c;
        }
    }
    *bytes = most;
    return best;
}

/*
 * Closes the connections holding the most, binary or HTTP, until the
 * estimate (the last sample less what the closed ones held) is below the
 * target. Holders below MEM_MIN_VICTIM are left alone: what is left then
 * is not any one peer's doing, and refusals handle it.
 */
static void
mem_shed(struct loop *l)
{
    uint64_t pending = l->mem.shed_pending + l->mem.shed_pending_conns;
    uint64_t est = l->mem.used > pending ? l->mem.used - pending : 0;
    uint64_t target = mem_mark(l, MEM_TARGET_16THS);
    unsigned closed = 0;

    while (est > target && closed < MEM_SHED_MAX) {
        uint64_t cb = 0, hb = 0;
        struct conn *c = mem_biggest_conn(l, &cb);
        void *h = NULL;

        if (l->http_scan != NULL) {
            h = l->http_scan(l->http, 0, &hb);
        }
        if (cb < MEM_MIN_VICTIM && hb < MEM_MIN_VICTIM) {
            break;
        }
        if (cb >= hb) {
            log_warn("%s '%s': holds %llu bytes, closed for the memory "
                     "budget (%llu of max_memory %llu in use)",
                     c->ops->role, c->peer, (unsigned long long)cb,
                     (unsigned long long)l->mem.used,
                     (unsigned long long)l->cfg->max_memory);
            conn_abort(c, FERRY_EOVERLOADED,
                       "memory budget: closing the connections holding the "
                       "most");
            est = est > cb ? est - cb : 0;
            l->mem.shed_pending_conns += cb;
        } else {
            /* Counted in shed_pending until h2o has closed it. */
            l->http_shed(l->http, h, "the memory budget");
            est = est > hb ? est - hb : 0;
        }
        l->mem.closed_budget++;
        closed++;
    }
    if (closed > 0) {
        l->mem.shed_at = loop_now(l);
    }
}

/* Past the shedding mark: no binary conn reads more in this turn (the
 * HTTP side pauses its own, http/server.c), so what the ones closed held
 * is freed before more comes in. */
static void
mem_pause_reads(struct loop *l)
{
    if (l->mem.reads_paused) {
        return;
    }
    l->mem.reads_paused = true;
    for (struct list *n = l->all.next; n != &l->all; n = n->next) {
        conn_pause_reads(container_of(n, struct conn, all_node));
    }
}

/* The next turn: they read again, unless paused for their output. */
static void
mem_resume_reads(struct loop *l)
{
    if (!l->mem.reads_paused) {
        return;
    }
    l->mem.reads_paused = false;
    for (struct list *n = l->all.next; n != &l->all; n = n->next) {
        struct conn *c = container_of(n, struct conn, all_node);
        if (c->state != CONN_CLOSING && !c->destroyed) {
            conn_wake(c);
        }
    }
}

void
mem_step(struct loop *l)
{
    const struct config *cfg = l->cfg;
    uint64_t now = loop_now(l);
    uint64_t used;
    bool scan;

    /* The binary conns closed in the last turn are freed by now. */
    l->mem.shed_pending_conns = 0;
    mem_resume_reads(l);
    if (now == l->mem.sampled_at) {
        return;
    }
    l->mem.sampled_at = now;
    l->mem.read_since = 0;
    used = mem_live_bytes();
    l->mem.used = used;
    if (used > l->mem.peak) {
        l->mem.peak = used;
    }
    /* HTTP conns over their own bound, when memory grew or now and then:
     * h2o tells nobody when a body grows. */
    if (used < l->mem.scanned_used) {
        l->mem.scanned_used = used;
    }
    scan = used > l->mem.scanned_used + MEM_SCAN_STEP ||
           now >= l->mem.scan_at + MEM_SCAN_MS;
    if (scan && l->http_scan != NULL && cfg->http_conn_body_limit != 0) {
        uint64_t ignored;
        l->http_scan(l->http, cfg->http_conn_body_limit, &ignored);
        l->mem.scanned_used = used;
        l->mem.scan_at = now;
    }
    if (cfg->max_memory != 0 && used >= mem_mark(l, MEM_SHED_16THS) &&
        now >= l->mem.shed_at + MEM_SHED_GAP_MS) {
        mem_shed(l);
    }
#ifndef MEM_ASAN
    /* Give back what the peers that left held: free pages in the middle
     * of the heap stay in RSS until malloc_trim() returns them. */
    if (used > l->mem.trim_used) {
        l->mem.trim_used = used;
    } else if (used + MEM_TRIM_STEP < l->mem.trim_used &&
               now >= l->mem.trim_at + MEM_TRIM_GAP_MS) {
        malloc_trim(0);
        l->mem.trim_at = now;
        l->mem.trim_used = used;
    }
#endif
}

void
mem_note_alloc(struct loop *l, size_t n)
{
    l->mem.read_since += n;
}

void
mem_note_read(struct loop *l, size_t n)
{
    uint64_t used;

    if (l->cfg->max_memory == 0) {
        return;
    }
    l->mem.read_since += n;
    if (l->mem.read_since < MEM_RESAMPLE_BYTES) {
        return;
    }
    l->mem.read_since = 0;
    used = mem_live_bytes();
    l->mem.used = used;
    if (used > l->mem.peak) {
        l->mem.peak = used;
    }
    /* What the conns closed since the last shedding held is not freed
     * yet (HTTP ones at their next read, binary ones after this turn):
     * closing more for it would close innocent ones. */
    if (used >= mem_mark(l, MEM_SHED_16THS) + l->mem.shed_pending +
                    l->mem.shed_pending_conns) {
        mem_shed(l);
    }
    if (used >= mem_mark(l, MEM_SHED_16THS)) {
        mem_pause_reads(l);
    }
}
