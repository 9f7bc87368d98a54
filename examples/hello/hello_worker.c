/* SPDX-License-Identifier: MIT */
/*
 * hello_worker.c - the smallest ferry worker: serves "hello", answering
 * "hello, " followed by the request payload.
 *
 *   hello_worker [--addr ADDR]      then: ferry call hello world
 *
 * The access token, if ferryd wants one, comes from $FERRY_TOKEN.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"

static struct ferry_worker *worker;

static void
on_hello(struct ferry_job *job, void *arg)
{
    char reply[1024];
    size_t len;
    const char *name = ferry_job_payload(job, &len);

    if (len > sizeof(reply) - 8) {
        ferry_job_fail(job, FERRY_EINVALID_ARGUMENT, "name too long");
        return;
    }
    ferry_job_reply(job, reply,
                    (size_t)sprintf(reply, "hello, %.*s", (int)len, name));
}

static void
on_ready(struct ferry_worker *w, void *arg)
{
    printf("READY\n");
    fflush(stdout);
}

static void
on_signal(int sig)
{
    ferry_worker_stop(worker);
}

int
main(int argc, char **argv)
{
    const char *addr = NULL; /* NULL: $FERRY_ADDR or 127.0.0.1:7700 */
    /* The access token, when ferryd asks for one. */
    struct ferry_opts opts = {.token = getenv("FERRY_TOKEN")};
    ferry_err err;

    if (argc == 3 && strcmp(argv[1], "--addr") == 0) {
        addr = argv[2];
    } else if (argc != 1) {
        bool help = strcmp(argv[1], "--help") == 0;
        fprintf(help ? stdout : stderr, "usage: hello_worker [--addr ADDR]\n");
        return help ? 0 : 2;
    }
    if (ferry_worker_new(addr, &opts, &worker) != FERRY_OK ||
        ferry_worker_register(worker, "hello", 16, on_hello, NULL) !=
            FERRY_OK) {
        fprintf(stderr, "hello_worker: bad address\n");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    err = ferry_worker_run(worker, on_ready, NULL);
    signal(SIGINT, SIG_IGN); /* a late signal must not stop a freed worker */
    signal(SIGTERM, SIG_IGN);
    ferry_worker_free(worker);
    if (err != FERRY_OK) {
        fprintf(stderr, "hello_worker: %s\n", ferry_strerror(err));
    }
    return err == FERRY_OK ? 0 : 1;
}
