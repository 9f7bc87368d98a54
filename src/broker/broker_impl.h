/* SPDX-License-Identifier: MIT */
/*
 * broker_impl.h - what broker.c (request records, deadlines, circuit,
 * sinks) and workers.c (the worker pool) share inside the broker. Not for
 * other parts of ferryd: they use broker.h and backend.h.
 */
#ifndef FERRY_BROKER_BROKER_IMPL_H
#define FERRY_BROKER_BROKER_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"

/* broker.c: a record's life. */
ferry_err broker_req_copy(struct broker *b, struct req *r, struct slice key,
                          struct slice payload);
void broker_req_drop_copy(struct broker *b, struct req *r);
bool broker_req_may_retry(const struct broker *b, const struct req *r);
void broker_req_free(struct broker *b, struct req *r);
void broker_req_fail(struct broker *b, struct req *r, ferry_err code,
                     struct slice msg);
void broker_req_fail_code(struct broker *b, struct req *r, ferry_err code);
void broker_req_timer_cb(struct timer *t);
/* r once more from the top, as its caller's request with what is left of
 * its deadline: routed anew (the cluster's retry of a keyed request a
 * peer answered NOT_MY_VBUCKET). r holds its key and payload inline. */
void broker_resubmit(struct broker *b, struct req *r);
/* r ended at its worker or held backend: ok false for a failure that is
 * the service's fault; feeds ejection and the circuit breaker. */
void broker_outcome(struct broker *b, struct req *r, bool ok,
                    bool breaker_only);
/* Whether an error code is transient or the serving side's fault. */
bool broker_is_retryable(ferry_err code);
void broker_held_cancelled(struct backend *be, uint64_t h);

/* workers.c: the worker pool, the backend of every service that is not
 * in-daemon (backend.h's record hooks). */
extern const struct backend_ops workers_backend_ops;

#endif
