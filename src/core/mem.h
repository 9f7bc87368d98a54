/* SPDX-License-Identifier: MIT */
/*
 * mem.h - the daemon's memory budget (max_memory), over every connection
 * of every kind.
 *
 * Per-connection limits (output_limit, max_frame, http_conn_body_limit)
 * bound what one peer costs; this bounds what all of them cost together.
 * What is measured is the allocator's own count of live bytes (glibc's
 * mallinfo2(), or ASan's count in the sanitizer build), so that bodies
 * h2o holds inside its own buffers count as much as ferryd's input and
 * output buffers and queued payload copies. It is sampled at most once per
 * loop turn and millisecond, from the prepare hook. Near the budget new
 * requests get OVERLOADED (mem_is_tight()); at the shedding mark the
 * connections holding the most bytes, binary or HTTP, are closed first,
 * until the estimate is back under the target. Memory freed then is given
 * back to the system (malloc_trim), and large buffers are mmap'd (a fixed
 * M_MMAP_THRESHOLD), so RSS falls once the peers are gone.
 */
#ifndef FERRY_CORE_MEM_H
#define FERRY_CORE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* Marks, in 16ths of max_memory. */
#define MEM_SHED_16THS 12           /* close the biggest holders from here */
#define MEM_TARGET_16THS 10         /* ... until the estimate is below this */
#define MEM_REFUSE_16THS 15         /* new requests get OVERLOADED from here */
#define MEM_MIN_VICTIM (256 * 1024) /* a holder smaller is never closed */

/* Embedded in struct loop. Counters are shown in /metrics. */
struct mem {
    uint64_t used;          /* allocator's live bytes, last sample */
    uint64_t peak;          /* highest sample */
    uint64_t sampled_at;    /* loop ms of the last sample */
    uint64_t shed_at;       /* loop ms of the last shedding */
    uint64_t shed_pending;  /* what HTTP conns shed hold until h2o
                               has closed them (not freed yet) */
    uint64_t shed_pending_conns; /* ... binary conns closed this turn */
    bool reads_paused;           /* binary reads paused for this turn */
    uint64_t scanned_used;  /* used at the last scan of HTTP conns */
    uint64_t scan_at;       /* loop ms of that scan */
    uint64_t trim_used;     /* used at the last malloc_trim */
    uint64_t trim_at;       /* loop ms of the last malloc_trim */
    uint64_t read_since;    /* bytes read or grown since the last sample */
    uint64_t refused;       /* requests refused for the budget */
    uint64_t closed_budget; /* connections closed for the budget */
    uint64_t closed_output; /* closed over output_limit */
    uint64_t closed_soft;   /* closed over output_soft_limit too long */
    uint64_t closed_body;   /* HTTP conns closed over
                               http_conn_body_limit */
};

/* Sets the allocator up so that freed large buffers go back to the system
 * (a fixed mmap threshold, a trim threshold); once, at start. */
void mem_tune(void);

/* The allocator's live bytes now: in-use heap chunks plus mmap'd ones. */
uint64_t mem_live_bytes(void);

/* The prepare hook's part: samples, scans HTTP conns, sheds, trims. */
void mem_step(struct loop *l);

/*
 * Counts n bytes a connection read (binary, or HTTP through
 * http/server.c's hook on h2o's reads). A loop turn can read megabytes
 * from each of many sockets before the prepare hook samples again; every
 * MiB read samples at once and, past the shedding mark, sheds now, so the
 * budget is overshot by about a MiB of input, not by a turn's.
 * May close any conn, the reader included: call it last.
 */
void mem_note_read(struct loop *l, size_t n);

/*
 * Counts n bytes a buffer grew by (a doubling is seen by the allocator at
 * once, whatever was read into it), without sampling: the next
 * mem_note_read() samples if the MiB is full. Safe anywhere.
 */
void mem_note_alloc(struct loop *l, size_t n);

/* Whether the last sample is past the shedding mark (MEM_SHED_16THS):
 * input that can wait (HTTP reads) waits for the next turn. */
bool mem_is_shedding(const struct loop *l);

/*
 * Whether a new request of more bytes must be refused with OVERLOADED:
 * the last sample plus more is past MEM_REFUSE_16THS of max_memory.
 * Counts the refusal.
 */
bool mem_is_tight(struct loop *l, size_t more);

#endif
