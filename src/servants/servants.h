/* SPDX-License-Identifier: MIT */
/*
 * servants.h - the services ferryd serves itself beyond echo,
 * ferry.services and ferry.admin: ferry.cache (and its memcached face),
 * ferry.kv, ferry.id and ferry.queue, and the durable store under them,
 * and ferry.topic (in memory only: it needs no store).
 *
 * main() opens them after the broker and closes them at shutdown, after
 * the broker has stopped: the store's last commits are on disk and their
 * callbacks have run before the loop ends. Each servant is a backend of
 * broker/backend.h; this file only starts and stops them in order.
 */
#ifndef FERRY_SERVANTS_SERVANTS_H
#define FERRY_SERVANTS_SERVANTS_H

#include "ferry.h"

struct broker;
struct cache_service;
struct id_service;
struct kv_service;
struct queue_engine;
struct topic_engine;
struct memcache_face;
struct store;

/* Owned by main(); reached from the loop as loop->servants. */
struct servants {
    struct broker *b;               /* borrowed */
    struct store *store;            /* <data_dir>/store, owned */
    struct cache_service *cache;    /* ferry.cache, owned */
    struct memcache_face *memcache; /* memcache_listen, owned, or NULL */
    struct kv_service *kv;          /* ferry.kv, owned */
    struct id_service *id;          /* ferry.id, owned */
    struct queue_engine *queue;     /* ferry.queue, owned */
    struct topic_engine *topic;     /* ferry.topic, owned */
};

/* Opens the store and starts every servant; logs and returns the error
 * of the first that cannot start (ferryd then exits). */
ferry_err servants_open(struct servants *sv, struct broker *b);

/* Stops every servant and closes the store (its queued writes committed
 * first). Run the loop afterwards so that the handles close. */
void servants_close(struct servants *sv);

#endif
