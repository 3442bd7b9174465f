//===- NumpyRandomTest.cpp - default_rng against numpy, bit for bit -------===//
//
// Compares runtime/base/NumpyRandom with values numpy produced at
// development time (test/runtime/Inputs/numpy-pcg64-golden.txt, written by
// scripts/dev/gen-numpy-pcg64-golden.py; numpy is not needed here): the
// SeedSequence state, raw PCG64 outputs, bounded int64 `integers` for many
// seeds and bounds, and the Engram multipliers of V4-SPEC 8.4.
//
//===----------------------------------------------------------------------===//
#include "runtime/base/NumpyRandom.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef V4_TEST_SOURCE_DIR
#error "V4_TEST_SOURCE_DIR must point at the test directory"
#endif

namespace {

namespace np = v4::numpy;

/// A hex seed of any size as 32-bit words, least significant first.
std::vector<uint32_t> hexWords(const std::string &hex) {
  std::vector<uint32_t> words;
  for (size_t end = hex.size(); end > 0;) {
    size_t begin = end >= 8 ? end - 8 : 0;
    words.push_back(uint32_t(
        std::strtoul(hex.substr(begin, end - begin).c_str(), nullptr, 16)));
    end = begin;
  }
  while (words.size() > 1 && words.back() == 0)
    words.pop_back();
  return words;
}

/// A decimal integer in [-2^63, 2^64) modulo 2^64.
uint64_t wrapped(const std::string &dec) {
  if (!dec.empty() && dec[0] == '-')
    return uint64_t(0) - std::strtoull(dec.c_str() + 1, nullptr, 10);
  return std::strtoull(dec.c_str(), nullptr, 10);
}

struct Record {
  std::string kind;
  std::vector<std::string> key;
  std::vector<std::string> values;
  int line = 0;
};

std::vector<Record> readGolden() {
  std::ifstream in(std::string(V4_TEST_SOURCE_DIR) +
                   "/runtime/Inputs/numpy-pcg64-golden.txt");
  std::vector<Record> records;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#')
      continue;
    std::istringstream is(line);
    Record r;
    r.line = number;
    is >> r.kind;
    std::string word;
    bool afterColon = false;
    while (is >> word) {
      if (word == ":")
        afterColon = true;
      else
        (afterColon ? r.values : r.key).push_back(word);
    }
    records.push_back(std::move(r));
  }
  return records;
}

std::vector<std::string> decimal(const std::vector<uint64_t> &v) {
  std::vector<std::string> out;
  for (uint64_t x : v)
    out.push_back(std::to_string(x));
  return out;
}

TEST(NumpyRandom, MatchesNumpyGolden) {
  std::vector<Record> records = readGolden();
  ASSERT_GT(records.size(), 2000u) << "golden file missing or short";
  std::set<std::string> seeds;
  std::set<std::pair<std::string, std::string>> bounds;
  size_t compared = 0;
  for (const Record &r : records) {
    SCOPED_TRACE("golden line " + std::to_string(r.line));
    std::vector<std::string> got;
    if (r.kind == "state") {
      ASSERT_EQ(r.key.size(), 1u);
      np::SeedSequence seq(hexWords(r.key[0]));
      got = decimal(seq.generateState64(4));
      seeds.insert(r.key[0]);
    } else if (r.kind == "raw") {
      ASSERT_EQ(r.key.size(), 1u);
      np::PCG64 rng{np::SeedSequence(hexWords(r.key[0]))};
      std::vector<uint64_t> raw(r.values.size());
      for (uint64_t &x : raw)
        x = rng.next64();
      got = decimal(raw);
    } else if (r.kind == "ints") {
      ASSERT_EQ(r.key.size(), 3u);
      np::PCG64 rng{np::SeedSequence(hexWords(r.key[0]))};
      uint64_t low = wrapped(r.key[1]), high = wrapped(r.key[2]);
      std::vector<uint64_t> out(r.values.size());
      np::boundedFill(rng, low, high - 1 - low, out.data(), out.size());
      for (uint64_t x : out)
        got.push_back(std::to_string(int64_t(x)));
      bounds.insert({r.key[1], r.key[2]});
    } else if (r.kind == "mult") {
      ASSERT_EQ(r.key.size(), 4u);
      uint64_t seed = std::strtoull(r.key[0].c_str(), nullptr, 10);
      int64_t vc = std::strtoll(r.key[1].c_str(), nullptr, 10);
      int64_t layer = std::strtoll(r.key[2].c_str(), nullptr, 10);
      size_t n = std::strtoull(r.key[3].c_str(), nullptr, 10);
      for (int64_t m :
           np::engramMultipliers(np::engramMultiplierSeed(seed, layer),
                                 np::engramMultiplierBound(vc), n))
        got.push_back(std::to_string(m));
    } else {
      FAIL() << "unknown record kind '" << r.kind << "'";
    }
    ASSERT_EQ(got, r.values) << r.kind;
    ++compared;
  }
  EXPECT_EQ(compared, records.size());
  EXPECT_GE(seeds.size(), 40u);
  EXPECT_GE(bounds.size(), 40u);
}

TEST(NumpyRandom, SeedWordsAreNumpys) {
  EXPECT_EQ(np::seedWords(0), std::vector<uint32_t>{0});
  EXPECT_EQ(np::seedWords(0xFFFFFFFFull), std::vector<uint32_t>{0xFFFFFFFFu});
  EXPECT_EQ(np::seedWords(0x100000000ull), (std::vector<uint32_t>{0, 1}));
}

// V4-SPEC 8.4's worked value: V_c = 99092 gives B = 46,539,438,283,891.
TEST(NumpyRandom, EngramBoundFollowsTheSpec) {
  EXPECT_EQ(np::engramMultiplierBound(99092), 46539438283891);
  EXPECT_EQ(np::engramMultiplierBound(1), INT64_MAX / 2);
  EXPECT_EQ(np::engramMultiplierBound(INT64_MAX), 1);
  EXPECT_EQ(np::engramMultiplierSeed(0, 14), 140098u);
}

} // namespace
