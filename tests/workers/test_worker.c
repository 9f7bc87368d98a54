/* SPDX-License-Identifier: MIT */
/*
 * test_worker.c - a worker that misbehaves on purpose, for the integration
 * and fault tests: it answers at once, late, never, with an error, or with
 * a tag that shows which worker served.
 *
 *   test_worker --service NAME [--addr ADDR] [--credit N] [--mode MODE]
 *               [--token TOKEN]
 *               [--name NAME]
 *
 * MODE: echo (default), sleep:MS, never, fail:CODE, tag:TEXT, flaky:CODE
 * (echo until SIGUSR1, then fail with CODE until SIGUSR2). It drives
 * ferry_worker_poll() itself so that sleeping jobs are answered from its
 * own timer list, several at once when the credit allows.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry.h"

enum tw_mode { TW_ECHO, TW_SLEEP, TW_NEVER, TW_FAIL, TW_TAG, TW_FLAKY };

/* A job answered later (sleep mode). */
struct tw_delayed {
    struct ferry_job *job; /* held until answered */
    uint64_t due_ms;       /* when to answer */
    char *payload;         /* owned: copy of the request payload */
    size_t len;            /* bytes in payload */
};

struct tw_state {
    enum tw_mode mode;          /* how to answer */
    unsigned long sleep_ms;     /* sleep:MS */
    ferry_err fail_code;        /* fail:CODE */
    const char *tag;            /* tag:TEXT, borrowed from argv */
    struct tw_delayed *delayed; /* owned: jobs waiting for their time */
    size_t ndelayed;            /* entries in use */
    size_t cap;                 /* entries allocated */
    char *scratch;              /* owned: reply buffer for tag mode */
    size_t scratch_cap;         /* bytes allocated for scratch */
};

static struct ferry_worker *worker;
static volatile sig_atomic_t stopping;
static volatile sig_atomic_t failing; /* flaky mode: SIGUSR1 on, SIGUSR2 off */

static void
tw_usage(FILE *out)
{
    fprintf(out,
            "usage: test_worker --service NAME [--addr ADDR] [--credit N]\n"
            "                   [--mode MODE] [--name NAME] [--token TOKEN]\n"
            "\n"
            "A worker for tests; --credit defaults to 1. MODE is one of:\n"
            "  echo        reply with the payload (default)\n"
            "  sleep:MS    reply with the payload after MS milliseconds\n"
            "  never       never answer\n"
            "  fail:CODE   fail with error CODE (a number), \"test failure\"\n"
            "  tag:TEXT    reply TEXT:payload\n"
            "  flaky:CODE  echo; after SIGUSR1 fail with error CODE, after "
            "SIGUSR2\n"
            "              echo again\n"
            "--token (default $FERRY_TOKEN) is sent in HELLO.\n"
            "Prints READY once registered; exits 0 on SIGINT or SIGTERM.\n");
}

static uint64_t
tw_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
tw_reply_tagged(struct tw_state *st, struct ferry_job *job, const void *payload,
                size_t len)
{
    size_t tlen = strlen(st->tag), need = tlen + 1 + len;
    char *p;

    if (need > st->scratch_cap) {
        p = realloc(st->scratch, need);
        if (p == NULL) {
            (void)ferry_job_fail(job, FERRY_ENOMEM, "out of memory");
            return;
        }
        st->scratch = p;
        st->scratch_cap = need;
    }
    memcpy(st->scratch, st->tag, tlen);
    st->scratch[tlen] = ':';
    if (len > 0) {
        memcpy(st->scratch + tlen + 1, payload, len);
    }
    (void)ferry_job_reply(job, st->scratch, need);
}

static void
tw_delay(struct tw_state *st, struct ferry_job *job, const void *payload,
         size_t len)
{
    struct tw_delayed *d;

    if (st->ndelayed == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        d = realloc(st->delayed, cap * sizeof(*d));
        if (d == NULL) {
            (void)ferry_job_fail(job, FERRY_ENOMEM, "out of memory");
            return;
        }
        st->delayed = d;
        st->cap = cap;
    }
    d = &st->delayed[st->ndelayed];
    d->payload = malloc(len ? len : 1);
    if (d->payload == NULL) {
        (void)ferry_job_fail(job, FERRY_ENOMEM, "out of memory");
        return;
    }
    if (len > 0) {
        memcpy(d->payload, payload, len);
    }
    d->len = len;
    d->job = job;
    d->due_ms = tw_now_ms() + st->sleep_ms;
    st->ndelayed++;
}

static void
tw_on_job(struct ferry_job *job, void *arg)
{
    struct tw_state *st = arg;
    size_t len;
    const void *payload = ferry_job_payload(job, &len);

    switch (st->mode) {
    case TW_ECHO:
        (void)ferry_job_reply(job, payload, len);
        break;
    case TW_SLEEP:
        tw_delay(st, job, payload, len);
        break;
    case TW_NEVER:
        break; /* held until the worker goes away */
    case TW_FAIL:
        (void)ferry_job_fail(job, st->fail_code, "test failure");
        break;
    case TW_TAG:
        tw_reply_tagged(st, job, payload, len);
        break;
    case TW_FLAKY:
        if (failing) {
            (void)ferry_job_fail(job, st->fail_code, "test failure");
        } else {
            (void)ferry_job_reply(job, payload, len);
        }
        break;
    }
}

/* Answers the delayed jobs that are due; returns the ms until the next
 * one is, or -1 when none waits. */
static int
tw_answer_due(struct tw_state *st)
{
    uint64_t now = tw_now_ms(), next = UINT64_MAX;
    size_t i = 0;

    while (i < st->ndelayed) {
        struct tw_delayed *d = &st->delayed[i];
        if (d->due_ms <= now) {
            (void)ferry_job_reply(d->job, d->payload, d->len);
            free(d->payload);
            *d = st->delayed[--st->ndelayed];
            continue;
        }
        if (d->due_ms < next) {
            next = d->due_ms;
        }
        i++;
    }
    return next == UINT64_MAX ? -1 : (int)(next - now);
}

static bool
tw_parse_mode(struct tw_state *st, const char *m)
{
    char *end;
    unsigned long v;

    if (strcmp(m, "echo") == 0) {
        st->mode = TW_ECHO;
    } else if (strcmp(m, "never") == 0) {
        st->mode = TW_NEVER;
    } else if (strncmp(m, "sleep:", 6) == 0) {
        v = strtoul(m + 6, &end, 10);
        if (m[6] < '0' || m[6] > '9' || *end != '\0' || v > 86400000) {
            return false;
        }
        st->mode = TW_SLEEP;
        st->sleep_ms = v;
    } else if (strncmp(m, "fail:", 5) == 0) {
        v = strtoul(m + 5, &end, 10);
        if (m[5] < '0' || m[5] > '9' || *end != '\0' || v < 1 || v > 65535) {
            return false;
        }
        st->mode = TW_FAIL;
        st->fail_code = (ferry_err)v;
    } else if (strncmp(m, "flaky:", 6) == 0) {
        v = strtoul(m + 6, &end, 10);
        if (m[6] < '0' || m[6] > '9' || *end != '\0' || v < 1 || v > 65535) {
            return false;
        }
        st->mode = TW_FLAKY;
        st->fail_code = (ferry_err)v;
    } else if (strncmp(m, "tag:", 4) == 0) {
        st->mode = TW_TAG;
        st->tag = m + 4;
    } else {
        return false;
    }
    return true;
}

/* flaky mode: SIGUSR1 starts failing, SIGUSR2 stops. */
static void
tw_on_toggle(int sig)
{
    failing = sig == SIGUSR1;
}

static void
tw_on_signal(int sig)
{
    stopping = 1;
    ferry_worker_stop(worker);
}

/* Polls until stopped; returns FERRY_OK or why serving is impossible. */
static ferry_err
tw_serve(struct tw_state *st)
{
    bool announced = false;
    uint64_t end;
    ferry_err err;
    int t;

    while (!stopping) {
        t = tw_answer_due(st);
        err = ferry_worker_poll(worker, t);
        if (err != FERRY_OK) {
            return err;
        }
        if (!announced && ferry_worker_is_ready(worker)) {
            announced = true;
            printf("READY\n");
            fflush(stdout);
        }
    }
    /* Stopping: ferryd has been told (DRAIN); give sleeping jobs up to a
     * second to finish, as ferry_worker_run() does. */
    end = tw_now_ms() + 1000;
    while (st->ndelayed > 0 && tw_now_ms() < end &&
           ferry_worker_fd(worker) >= 0) {
        t = tw_answer_due(st);
        if (t < 0 || (uint64_t)t > end - tw_now_ms()) {
            t = (int)(end - tw_now_ms());
        }
        (void)ferry_worker_poll(worker, t);
    }
    (void)tw_answer_due(st);
    (void)ferry_worker_poll(worker, 0); /* flush the last answers */
    return FERRY_OK;
}

int
main(int argc, char **argv)
{
    struct tw_state st = {.mode = TW_ECHO};
    struct ferry_opts opts = {0};
    const char *addr = NULL, *service = NULL;
    unsigned long credit = 1;
    struct sigaction sa;
    ferry_err err;
    char *end;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            tw_usage(stdout);
            return 0;
        }
        if (v == NULL) {
            goto out_usage;
        }
        if (strcmp(a, "--addr") == 0) {
            addr = v;
        } else if (strcmp(a, "--service") == 0) {
            service = v;
        } else if (strcmp(a, "--token") == 0) {
            opts.token = v;
        } else if (strcmp(a, "--name") == 0) {
            opts.name = v;
        } else if (strcmp(a, "--credit") == 0) {
            credit = strtoul(v, &end, 10);
            if (*v < '0' || *v > '9' || *end != '\0' || credit < 1 ||
                credit > 65535) {
                fprintf(stderr, "test_worker: --credit must be 1..65535\n");
                return 2;
            }
        } else if (strcmp(a, "--mode") == 0) {
            if (!tw_parse_mode(&st, v)) {
                fprintf(stderr, "test_worker: bad --mode '%s'\n", v);
                return 2;
            }
        } else {
            goto out_usage;
        }
        i++;
    }
    if (service == NULL) {
        goto out_usage;
    }
    if (opts.token == NULL) {
        opts.token = getenv("FERRY_TOKEN");
    }
    err = ferry_worker_new(addr, &opts, &worker);
    if (err != FERRY_OK) {
        fprintf(stderr, "test_worker: %s\n", ferry_strerror(err));
        return 2;
    }
    err = ferry_worker_register(worker, service, (uint32_t)credit, tw_on_job,
                                &st);
    memset(&sa, 0, sizeof(sa));
    if (err == FERRY_OK) {
        sa.sa_handler = tw_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (st.mode == TW_FLAKY) {
            sa.sa_handler = tw_on_toggle;
            sigaction(SIGUSR1, &sa, NULL);
            sigaction(SIGUSR2, &sa, NULL);
        }
        err = tw_serve(&st);
    }
    if (err != FERRY_OK) {
        fprintf(stderr, "test_worker: %s: %s\n", ferry_errname(err),
                ferry_strerror(err));
        rc = 1;
    }
    for (size_t i = 0; i < st.ndelayed; i++) {
        free(st.delayed[i].payload);
    }
    /* A late signal must not stop a freed worker. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ferry_worker_free(worker);
    free(st.delayed);
    free(st.scratch);
    return rc;

out_usage:
    tw_usage(stderr);
    return 2;
}
