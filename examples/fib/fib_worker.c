/* SPDX-License-Identifier: MIT */
/*
 * fib_worker.c - the Fibonacci service: serves "fib", answering
 * {"n": N} with {"N": N, "result": "0 1 1 2 3 ..."}, the first N Fibonacci
 * numbers (F0 = 0, F1 = 1) in exact decimal.
 *
 *   fib_worker [--addr ADDR] [--max N] [--credit N] [--token TOKEN]
 *
 * Numbers are computed once into a growing table (fib.c) and every answer
 * is a copy of a prefix of its text. Anything but an object whose "n" is an
 * integer in 1..max is refused with INVALID_ARGUMENT and a message saying
 * what is expected. The request contract, which the Python, Node and PHP
 * workers follow too, is examples/fib/README.md.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "fib.h"

#define FIB_DEFAULT_MAX 10000
#define FIB_MAX_MAX 1000000
#define FIB_MAX_PAYLOAD 4096             /* requests are tiny */
#define FIB_MAX_REPLY (16 * 1024 * 1024) /* ferryd's default frame limit */

/* The worker's state, passed to the handler. */
struct fib_worker {
    struct fib_table table; /* numbers computed so far */
    size_t max;             /* largest n served */
    char *reply;            /* owned: reused reply buffer */
    size_t reply_cap;       /* bytes allocated for reply */
};

static struct ferry_worker *worker;

static void
fib_usage(FILE *out)
{
    fprintf(out,
            "usage: fib_worker [--addr ADDR] [--max N] [--credit N] "
            "[--token TOKEN]\n"
            "\n"
            "Serves \"fib\": {\"n\": N} -> {\"N\": N, \"result\": \"0 1 1 2 "
            "...\"},\n"
            "the first N Fibonacci numbers, exact.\n"
            "\n"
            "  --addr ADDR  ferryd address (default $FERRY_ADDR, else "
            "127.0.0.1:7700)\n"
            "  --max N      largest n accepted (default %d)\n"
            "  --credit N   requests taken at once, 1..65535 (default 16)\n"
            "  --token TOKEN  access token sent in HELLO (default "
            "$FERRY_TOKEN)\n",
            FIB_DEFAULT_MAX);
}

/*
 * Reads n from the request as examples/fib/README.md defines it; writes *n
 * only when it is valid. Every number is decoded as a double, as in
 * JavaScript, so all four workers see the same values: 10, 10.0 and 1e1
 * are n = 10, and an integer beyond 64 bits is merely out of range.
 */
static bool
fib_parse_n(const struct fib_worker *fw, const void *payload, size_t len,
            size_t *n, char *why, size_t why_len)
{
    json_error_t jerr = {0}; /* json_error_code() is 0 until set */
    json_t *root, *jn;
    double v;

    if (len > FIB_MAX_PAYLOAD) {
        snprintf(why, why_len, "payload larger than %d bytes", FIB_MAX_PAYLOAD);
        return false;
    }
    /* No JSON text holds a NUL byte, but jansson 2.14 skips one right
     * after a number, true, false or null. */
    root = NULL;
    if (memchr(payload, '\0', len) == NULL) {
        root = json_loadb(
            payload, len,
            JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    }
    if (root == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* A number beyond double range: n's, or one n cannot be told from. */
        snprintf(why, why_len, "n must be an integer between 1 and %zu",
                 fw->max);
        return false;
    }
    if (root == NULL || !json_is_object(root)) {
        snprintf(why, why_len,
                 "payload must be a JSON object like {\"n\": 10}");
        json_decref(root);
        return false;
    }
    jn = json_object_get(root, "n");
    v = json_is_real(jn) ? json_real_value(jn) : 0.0;
    json_decref(root);
    if (!(v >= 1.0 && v <= (double)fw->max && v == (double)(size_t)v)) {
        snprintf(why, why_len, "n must be an integer between 1 and %zu",
                 fw->max);
        return false;
    }
    *n = (size_t)v;
    return true;
}

static void
fib_on_job(struct ferry_job *job, void *arg)
{
    struct fib_worker *fw = arg;
    const void *payload;
    size_t len, n, reply_len;
    char why[128];

    payload = ferry_job_payload(job, &len);
    if (!fib_parse_n(fw, payload, len, &n, why, sizeof(why))) {
        (void)ferry_job_fail(job, FERRY_EINVALID_ARGUMENT, why);
        return;
    }
    if (fib_format_size(n) > FIB_MAX_REPLY) {
        snprintf(why, sizeof(why),
                 "the result for n=%zu is larger than a frame may be", n);
        (void)ferry_job_fail(job, FERRY_EINVALID_ARGUMENT, why);
        return;
    }
    if (fib_format(&fw->table, n, &fw->reply, &fw->reply_cap, &reply_len) !=
        FERRY_OK) {
        (void)ferry_job_fail(job, FERRY_ENOMEM, "out of memory");
        return;
    }
    (void)ferry_job_reply(job, fw->reply, reply_len);
}

static void
fib_on_ready(struct ferry_worker *w, void *arg)
{
    printf("READY\n");
    fflush(stdout);
}

static void
fib_on_signal(int sig)
{
    ferry_worker_stop(worker);
}

/* Parses a number argument in lo..hi; false when it is not one. */
static bool
fib_parse_arg(const char *v, unsigned long lo, unsigned long hi,
              unsigned long *out)
{
    char *end;
    unsigned long x;

    if (*v < '0' || *v > '9') {
        return false;
    }
    x = strtoul(v, &end, 10);
    if (*end != '\0' || x < lo || x > hi) {
        return false;
    }
    *out = x;
    return true;
}

int
main(int argc, char **argv)
{
    struct fib_worker fw = {.max = FIB_DEFAULT_MAX};
    const char *addr = NULL;
    struct ferry_opts opts = {.token = getenv("FERRY_TOKEN")};
    unsigned long credit = 16, max = FIB_DEFAULT_MAX;
    struct sigaction sa;
    ferry_err err;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fib_usage(stdout);
            return 0;
        }
        if (v == NULL) {
            goto out_usage;
        }
        if (strcmp(a, "--addr") == 0) {
            addr = v;
        } else if (strcmp(a, "--token") == 0) {
            opts.token = v;
        } else if (strcmp(a, "--max") == 0) {
            if (!fib_parse_arg(v, 1, FIB_MAX_MAX, &max)) {
                fprintf(stderr, "fib_worker: --max must be 1..%d\n",
                        FIB_MAX_MAX);
                return 2;
            }
        } else if (strcmp(a, "--credit") == 0) {
            if (!fib_parse_arg(v, 1, 65535, &credit)) {
                fprintf(stderr, "fib_worker: --credit must be 1..65535\n");
                return 2;
            }
        } else {
            goto out_usage;
        }
        i++;
    }
    fw.max = max;
    fib_table_init(&fw.table);
    err = ferry_worker_new(addr, &opts, &worker);
    if (err != FERRY_OK) {
        fprintf(stderr, "fib_worker: address '%s': %s\n",
                addr != NULL ? addr : "(default)", ferry_strerror(err));
        return 2;
    }
    err =
        ferry_worker_register(worker, "fib", (uint32_t)credit, fib_on_job, &fw);
    memset(&sa, 0, sizeof(sa));
    if (err == FERRY_OK) {
        sa.sa_handler = fib_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        err = ferry_worker_run(worker, fib_on_ready, NULL);
    }
    if (err != FERRY_OK) {
        fprintf(stderr, "fib_worker: %s: %s\n", ferry_errname(err),
                ferry_strerror(err));
        rc = 1;
    }
    /* A late signal must not stop a freed worker. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ferry_worker_free(worker);
    fib_table_release(&fw.table);
    free(fw.reply);
    return rc;

out_usage:
    fib_usage(stderr);
    return 2;
}
