/* SPDX-License-Identifier: MIT */
/*
 * vbmap.h - the cluster's vbucket map: which node owns each of the 1024
 * vbuckets a key can hash to (docs/cluster.md, "Keys and vbuckets"). A
 * keyed request's key gives its vbucket (vb_of_key), the map gives the
 * vbucket's owner, and the request is served here or forwarded to it.
 *
 * Owners are chosen by rendezvous (highest random weight) hashing over the
 * live member names, so every node computes the same map from the member
 * list alone, in whatever order the list comes, and a node that leaves or
 * joins moves only its own share. Every formula here is part of the
 * cluster's contract: another implementation that follows docs/cluster.md
 * computes the same vbuckets and owners, checked by tests/vectors/
 * vbuckets.json.
 *
 * Also the same kind of pick among a handful of candidates inside one node
 * (hrw_pick: a keyed service's workers). Pure C, no libuv.
 */
#ifndef FERRY_CLUSTER_VBMAP_H
#define FERRY_CLUSTER_VBMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

/* Vbuckets in the cluster; fixed, since every client hashes keys to them. */
#define VB_COUNT 1024
/* "No owner" (a map without members) and "no such member". */
#define VB_NONE UINT16_MAX
/* The longest member name, in bytes. */
#define VBMAP_NAME_MAX 255
/* The most members a map holds: their indexes are below VB_NONE. */
#define VBMAP_MEMBERS_MAX 65535

/* One member of a map. */
struct vbmap_member {
    const char *name; /* owned by the map (its members block), NUL-ended */
    size_t len;       /* bytes of name, 1 to VBMAP_NAME_MAX */
    uint64_t hash;    /* XXH64(name, len, seed 0), the weight's input */
};

/* A map for one member list; embedded in its owner (the cluster state),
 * read-only once built. */
struct vbmap {
    uint64_t epoch;               /* etcd revision of the member list */
    struct vbmap_member *members; /* owned, n of them, by name bytewise */
    size_t n;                     /* members; 0 in a map without any */
    uint16_t owner[VB_COUNT];     /* index into members, or VB_NONE */
};

/* A key's vbucket: XXH64(key, len, seed 0) % VB_COUNT. */
uint16_t vb_of_key(const void *key, size_t len);

/* The hash of a member name that its weights start from:
 * XXH64(name, len, seed 0). */
uint64_t vbmap_name_hash(const char *name, size_t len);

/* The weight of a member (by its name hash) for a vbucket; the member with
 * the highest weight owns it. The same as hrw_weight(name_hash, vb). */
uint64_t vbmap_weight(uint64_t name_hash, uint16_t vb);

/*
 * Builds the map of n member names (NUL-terminated, any order) at epoch:
 * copies and sorts the names, then gives each vbucket to the member of
 * highest weight, ties to the bytewise smaller name. n may be 0 (names may
 * then be NULL): every owner is VB_NONE. FERRY_EINVALID_ARGUMENT for an
 * empty name, a name longer than VBMAP_NAME_MAX, a name given twice or
 * more than VBMAP_MEMBERS_MAX names; FERRY_ENOMEM. *m is written only on
 * success; release it with vbmap_release().
 */
ferry_err vbmap_init(struct vbmap *m, const char *const *names, size_t n,
                     uint64_t epoch);

/* Frees the names; m is then a map without members (every owner
 * VB_NONE, epoch 0). */
void vbmap_release(struct vbmap *m);

/* The owner's name of vbucket vb (borrowed from m), or NULL when m has no
 * members or vb is not below VB_COUNT. */
const char *vbmap_owner(const struct vbmap *m, unsigned vb);

/* The index in m->members of the member called name (len bytes), or
 * VB_NONE when it is not one. */
uint16_t vbmap_index(const struct vbmap *m, const char *name, size_t len);

/* The vbuckets member idx owns; 0 for an index that is not a member. */
unsigned vbmap_owned(const struct vbmap *m, uint16_t idx);

/* The vbuckets whose owner's name differs between a and b (a vbucket with
 * an owner in one and none in the other included). */
unsigned vbmap_moved(const struct vbmap *a, const struct vbmap *b);

/*
 * Rendezvous weight of a candidate for a key:
 * mix64(key_hash ^ mix64(candidate_id + 0x9e3779b97f4a7c15)), mix64 the
 * splitmix64 finalizer (docs/cluster.md). Cheap (a few multiplies) and
 * the same on every platform.
 */
uint64_t hrw_weight(uint64_t key_hash, uint64_t candidate_id);

/* The index in ids[0..n) of the candidate of highest weight for key_hash,
 * ties to the smaller id, so the order of ids does not matter; SIZE_MAX
 * when n is 0. Removing a candidate moves only the keys it had. */
size_t hrw_pick(uint64_t key_hash, const uint64_t *ids, size_t n);

#endif
