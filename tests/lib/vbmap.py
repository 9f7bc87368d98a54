# SPDX-License-Identifier: MIT
"""vbmap - the cluster's vbucket map computed the way docs/cluster.md
("Keys and vbuckets") says a client may compute it: XXH64 (written out
here from its specification, stdlib only, so it checks ferryd's libxxhash
independently), the key's vbucket, and the owner by rendezvous over the
member names. tests/vectors/test_vectors.py checks it against
tests/vectors/vbuckets.json."""

VB_COUNT = 1024
M64 = (1 << 64) - 1
P1 = 0x9E3779B185EBCA87
P2 = 0xC2B2AE3D27D4EB4F
P3 = 0x165667B19E3779F9
P4 = 0x85EBCA77C2B2AE63
P5 = 0x27D4EB2F165667C5


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def _merge(acc, val):
    acc ^= _round(0, val)
    return (acc * P1 + P4) & M64


def xxh64(data, seed=0):
    """XXH64 of bytes data."""
    n = len(data)
    i = 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed,
             (seed - P1) & M64]
        while i + 32 <= n:
            for j in range(4):
                lane = int.from_bytes(data[i + 8 * j:i + 8 * j + 8], "little")
                v[j] = _round(v[j], lane)
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) +
             _rotl(v[3], 18)) & M64
        for x in v:
            h = _merge(h, x)
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def vbucket(key):
    """The vbucket of a key (str or bytes)."""
    if isinstance(key, str):
        key = key.encode()
    return xxh64(key) % VB_COUNT


def weight(name_hash, vb):
    return mix64(name_hash ^ mix64((vb + 0x9E3779B97F4A7C15) & M64))


def owner(vb, names):
    """The member name owning vb among names (str)."""
    best = None
    for name in sorted(names):
        w = weight(xxh64(name.encode()), vb)
        if best is None or w > best[0]:
            best = (w, name)
    return best[1]


def owner_of_key(key, names):
    return owner(vbucket(key), names)


def key_owned_by(name, names, prefix="k"):
    """The first key prefix+N whose owner among names is name."""
    for i in range(100000):
        k = f"{prefix}{i}"
        if owner_of_key(k, names) == name:
            return k
    raise AssertionError(f"no key owned by {name}")
