//===- v4-artifact-testgen.cpp - tiny and corrupted artifacts for tests ---===//
//
//   v4-artifact-testgen OUT.v4a              the valid tiny artifact
//   v4-artifact-testgen --lie=NAME OUT.v4a   one row of the lies table
//   v4-artifact-testgen --list-lies          NAME RULE per line
//
// Test support for the lit suite (test/lib/TestArtifacts.h); not
// installed. Exit codes: 0 ok, 2 bad command line, 3 I/O.
//
//===----------------------------------------------------------------------===//

#include "test/lib/TestArtifacts.h"

#include <cstdio>
#include <string>

using namespace v4::artifact;
using namespace v4::artifact::testing;

int main(int argc, char **argv) {
  std::string lie, out;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--lie=", 0) == 0)
      lie = arg.substr(6);
    else if (arg == "--list-lies")
      list = true;
    else if (arg[0] != '-' && out.empty())
      out = arg;
    else {
      std::fprintf(stderr, "v4-artifact-testgen: bad argument '%s'\n",
                   arg.c_str());
      return 2;
    }
  }
  if (list) {
    for (const Lie &l : lies())
      std::printf("%s %s\n", l.name.c_str(), l.rule.c_str());
    return 0;
  }
  if (out.empty()) {
    std::fprintf(stderr, "usage: v4-artifact-testgen [--lie=NAME] OUT.v4a\n");
    return 2;
  }
  std::vector<uint8_t> bytes;
  if (lie.empty()) {
    bytes = tinyArtifact();
  } else {
    const Lie *found = nullptr;
    for (const Lie &l : lies())
      if (l.name == lie)
        found = &l;
    if (!found) {
      std::fprintf(stderr, "v4-artifact-testgen: no lie named '%s'\n",
                   lie.c_str());
      return 2;
    }
    bytes = lieBytes(*found);
  }
  std::FILE *f = std::fopen(out.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "v4-artifact-testgen: cannot write %s\n", out.c_str());
    return 3;
  }
  return 0;
}
