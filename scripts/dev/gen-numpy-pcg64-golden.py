#!/usr/bin/python3
# DEVELOPMENT TIME ONLY. CI and the tests never run this script and never
# need numpy: they read the committed output,
# test/runtime/Inputs/numpy-pcg64-golden.txt.
#
# Writes the values numpy produced for `np.random.default_rng(seed)`:
# SeedSequence.generate_state(4, uint64) (PCG64's seed and increment), the
# first raw PCG64 outputs, and `integers(low, high, size=n, dtype=np.int64)`
# for many seeds and bounds, so that runtime/base/NumpyRandom.cpp can be
# compared with numpy bit for bit (test/runtime/NumpyRandomTest.cpp).
#
#   apt-get install -y python3-numpy
#   /usr/bin/python3 scripts/dev/gen-numpy-pcg64-golden.py > test/runtime/Inputs/numpy-pcg64-golden.txt
#
# Format, one record a line (integers in decimal, seeds in hex):
#   state SEED_HEX : s0 s1 s2 s3            generate_state(4, uint64)
#   raw SEED_HEX : r0 ... r9                 bit_generator.random_raw(10)
#   ints SEED_HEX LOW HIGH : v0 ... vn-1     integers(LOW, HIGH, size=n)
#   mult SEED ENGRAM_VC LAYER N : m0 ...     V4-SPEC 8.4 multipliers
import sys

import numpy as np

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

seeds = [0, 1, 2, 3, 42, 1234, 12345, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
         2**32 + 1, 2**48 + 7, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
         2**64 + 12345, 2**96 - 1, 2**96 + 3, 2**127 + 99, 2**128,
         2**160 + 5, 2**200 + 2**100 + 1, 3**150]
seeds += [10007 * l for l in (1, 2, 3, 4, 5, 7, 14, 30, 43, 60, 61, 100)]
seeds += [7 + 10007 * l for l in (1, 3)]
seeds += [2**63 - 1 + 10007 * 14]

def bound_for(vc):
    """V4-SPEC 8.4: B = max(1, floor(floor((2^63 - 1) / V_c) / 2))."""
    return max(1, ((2**63 - 1) // vc) // 2)

highs = [1, 2, 3, 7, 10, 97, 1000, 65535, 65536, 2**31 - 1, 2**31,
         2**31 + 1, 2**32 - 2, 2**32 - 1, 2**32, 2**32 + 1, 2**32 + 2,
         2**33, 2**33 + 12345, 10**12, 2**53 + 1, 2**62, 2**62 + 1,
         3 * 2**61, 2**63 - 2, 2**63 - 1, 2**63]
highs += [bound_for(vc) for vc in (1, 2, 3, 90, 97, 99092, 129280, 2**31)]
pairs = [(0, h) for h in highs]
pairs += [(-5, 5), (-1, 0), (I64_MIN, I64_MAX), (I64_MIN, 2**63),
          (I64_MIN, 0), (-2**31, 2**31), (-2**32, 1), (100, 101),
          (2**62, 2**63), (2**40, 2**40 + 2**32), (2**40, 2**40 + 2**32 + 1)]

def words(values):
    return " ".join(str(int(v)) for v in values)

out = sys.stdout
out.write("# numpy %s; written by scripts/dev/gen-numpy-pcg64-golden.py "
          "(development time only)\n" % np.__version__)
records = 0
for seed in seeds:
    ss = np.random.SeedSequence(seed)
    out.write("state %x : %s\n" % (seed, words(ss.generate_state(4, np.uint64))))
    raw = np.random.PCG64(seed).random_raw(10)
    out.write("raw %x : %s\n" % (seed, words(raw)))
    records += 2
    for low, high in pairs:
        n = 9
        v = np.random.default_rng(seed).integers(low, high, size=n,
                                                 dtype=np.int64)
        out.write("ints %x %d %d : %s\n" % (seed, low, high, words(v)))
        records += 1
# Long runs: many draws from one generator (the 32-bit half buffer, and
# Lemire rejections near 2^63).
for seed in (0, 10007, 2**64 + 1):
    for low, high in ((0, 3 * 2**61), (0, 2**63), (0, 1000), (0, 2**31 + 1),
                      (0, bound_for(99092))):
        v = np.random.default_rng(seed).integers(low, high, size=200,
                                                 dtype=np.int64)
        out.write("ints %x %d %d : %s\n" % (seed, low, high, words(v)))
        records += 1
# V4-SPEC 8.4 multipliers: default_rng(engram_seed + 10007 * layer),
# N draws in [0, B), m = 2r + 1.
for engram_seed in (0, 5, 2**63 - 1):
    for vc in (90, 97, 99092, 129280):
        for layer in (0, 1, 3, 14, 60):
            for n in (2, 3, 4, 16):
                b = bound_for(vc)
                r = np.random.default_rng(engram_seed + 10007 * layer).integers(
                    0, b, size=n, dtype=np.int64)
                out.write("mult %d %d %d %d : %s\n" % (
                    engram_seed, vc, layer, n, words(2 * r + 1)))
                records += 1
sys.stderr.write("%d records, %d seeds, %d bounds\n" % (
    records, len(seeds), len(pairs)))
