# SPDX-License-Identifier: MIT
"""The cluster tests' own vbucket map (tests/lib/vbmap.py, written from
docs/cluster.md alone, XXH64 included) against the recorded vectors of
tests/vectors/vbuckets.json, and its XXH64 against the libxxhash ferryd
links, at every length that takes another path through the algorithm."""
import ctypes
import ctypes.util
import json
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import vbmap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class TestVbucketsPy(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(HERE, "vbuckets.json"), encoding="utf-8") as f:
            self.v = json.load(f)

    def test_keys_and_name_hashes(self):
        for k in self.v["keys"]:
            self.assertEqual(vbmap.vbucket(k["key"]), k["vbucket"], k)
        for name, h in self.v["name_hashes"].items():
            self.assertEqual(vbmap.xxh64(name.encode()), int(h), name)

    def test_owners_and_weights(self):
        members = self.v["members"]
        hashes = {n: vbmap.xxh64(n.encode()) for n in members}
        for o in self.v["owners"]:
            self.assertEqual(vbmap.owner(o["vbucket"], members), o["owner"])
            for n, w in o["weights"].items():
                self.assertEqual(vbmap.weight(hashes[n], o["vbucket"]),
                                 int(w))
        owned = {n: 0 for n in members}
        for vb in range(vbmap.VB_COUNT):
            owned[vbmap.owner(vb, members)] += 1
        self.assertEqual(owned, self.v["owned"])

    def test_xxh64_matches_libxxhash(self):
        name = ctypes.util.find_library("xxhash") or "libxxhash.so.0"
        lib = ctypes.CDLL(name)
        lib.XXH64.restype = ctypes.c_uint64
        lib.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                              ctypes.c_uint64]
        rnd = random.Random(13)
        for n in list(range(0, 70)) + [255, 1000]:
            data = bytes(rnd.getrandbits(8) for _ in range(n))
            self.assertEqual(vbmap.xxh64(data), lib.XXH64(data, n, 0), n)


if __name__ == "__main__":
    unittest.main()
