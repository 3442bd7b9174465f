//===- ReplayMain.cpp - runs fuzz inputs without libFuzzer ----------------===//
//
// The main of a fuzz target in a build without V4_FUZZ: runs
// LLVMFuzzerTestOneInput once on every file named on the command line and
// on every file of every directory named there (not recursive), so the
// checked-in corpus and regress/ inputs run in every build, sanitized or
// not (docs/RELIABILITY.md 3.1). Arguments starting with '-' (libFuzzer
// flags such as -runs=0) are ignored, so one command line serves both
// builds. Exit status 0 unless an input could not be read; a finding is a
// crash or a sanitizer report, as under libFuzzer.
//
//===----------------------------------------------------------------------===//
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv)
    __attribute__((weak));

namespace fs = std::filesystem;

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-')
      continue;
    fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (const auto &e : fs::directory_iterator(p, ec))
        if (e.is_regular_file())
          files.push_back(e.path());
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::is_regular_file(p, ec)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "%s: '%s' is neither a file nor a directory\n",
                   argv[0], argv[i]);
      return 1;
    }
  }
  for (const fs::path &p : inputs) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read '%s'\n", argv[0], p.c_str());
      return 1;
    }
    std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
    // A copy of exactly `size` bytes, so ASan sees reads past the end.
    std::vector<uint8_t> exact(bytes);
    LLVMFuzzerTestOneInput(exact.data(), exact.size());
  }
  std::printf("%s: ran %zu inputs\n", argv[0], inputs.size());
  return 0;
}
