/* SPDX-License-Identifier: MIT */
/*
 * echo_worker.c - a worker that answers every request with its payload
 * unchanged, for benchmarks and smoke tests. It replies from inside the
 * handler, so each batch of requests read in one turn goes back in one
 * write.
 *
 *   echo_worker [--addr ADDR] [--service NAME] [--credit N] [--token T]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"

static struct ferry_worker *worker;

static void
echo_usage(FILE *out)
{
    fprintf(out,
            "usage: echo_worker [--addr ADDR] [--service NAME] [--credit N]\n"
            "                   [--token TOKEN]\n"
            "\n"
            "Serves NAME (default echo_ext), replying each payload unchanged."
            "\n\n"
            "  --addr ADDR     ferryd address (default $FERRY_ADDR, else "
            "127.0.0.1:7700)\n"
            "  --service NAME  service to serve (default echo_ext)\n"
            "  --credit N      requests taken at once, 1..65535 "
            "(default 256)\n"
            "  --token TOKEN   access token sent in HELLO (default "
            "$FERRY_TOKEN)\n");
}

static void
echo_on_job(struct ferry_job *job, void *arg)
{
    size_t len;
    const void *p = ferry_job_payload(job, &len);

    (void)ferry_job_reply(job, p, len);
}

static void
echo_on_ready(struct ferry_worker *w, void *arg)
{
    printf("READY\n");
    fflush(stdout);
}

static void
echo_on_signal(int sig)
{
    ferry_worker_stop(worker);
}

int
main(int argc, char **argv)
{
    const char *addr = NULL, *service = "echo_ext";
    struct ferry_opts opts = {.token = getenv("FERRY_TOKEN")};
    unsigned long credit = 256;
    struct sigaction sa;
    char *end;
    ferry_err err;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            echo_usage(stdout);
            return 0;
        }
        if (v == NULL) {
            goto out_usage;
        }
        if (strcmp(a, "--addr") == 0) {
            addr = v;
        } else if (strcmp(a, "--token") == 0) {
            opts.token = v;
        } else if (strcmp(a, "--service") == 0) {
            service = v;
        } else if (strcmp(a, "--credit") == 0) {
            credit = strtoul(v, &end, 10);
            if (*v == '\0' || *end != '\0' || credit < 1 || credit > 65535) {
                fprintf(stderr, "echo_worker: --credit must be 1..65535\n");
                return 2;
            }
        } else {
            goto out_usage;
        }
        i++;
    }
    err = ferry_worker_new(addr, &opts, &worker);
    if (err != FERRY_OK) {
        fprintf(stderr, "echo_worker: address '%s': %s\n",
                addr != NULL ? addr : "(default)", ferry_strerror(err));
        return 2;
    }
    err = ferry_worker_register(worker, service, (uint32_t)credit, echo_on_job,
                                NULL);
    if (err != FERRY_OK) {
        fprintf(stderr, "echo_worker: service '%s': %s\n", service,
                ferry_strerror(err));
        ferry_worker_free(worker);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = echo_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    err = ferry_worker_run(worker, echo_on_ready, NULL);
    /* A late signal must not stop a freed worker. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ferry_worker_free(worker);
    if (err != FERRY_OK) {
        fprintf(stderr, "echo_worker: %s: %s\n", ferry_errname(err),
                ferry_strerror(err));
        return 1;
    }
    return 0;

out_usage:
    echo_usage(stderr);
    return 2;
}
