//===- v4-dump.cpp - print, verify and extract .v4a artifacts -------------===//
//
//   v4-dump model.v4a                      print everything
//   v4-dump --verify model.v4a             verify only
//   v4-dump --list-kernels model.v4a       one kernel per line
//   v4-dump --dump-code=N -o FILE model.v4a  extract code object N
//
// Uses only the runtime's artifact library (no LLVM). Exit codes
// (docs/STYLE.md): 0 ok, 1 artifact rejected, 2 bad command line, 3 I/O.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/base/Bytes.h"
#include "runtime/base/OutputFile.h"
#include "tools/common/CommandLine.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace v4::artifact;

static const char *kUsageLines = "usage: v4-dump [options] <model.v4a>";

static const char *kFooter =
    "Exit codes: 0 success; 1 artifact rejected; 2 bad command line; 3 I/O.";

/// The app of the command line, for usage errors found after parsing.
static CLI::App *app = nullptr;

static int usage(const std::string &message) {
  return v4::cli::usageError(*app, message);
}

/// "grid 1x(1/T:64)x1 block 128x1x1 smem 0": a token-dependent grid
/// dimension prints as fixed/T:tile, fixed blocks per tile of T tokens.
static std::string launchString(const Launch &l) {
  std::string s = "grid ";
  for (int i = 0; i < 3; ++i) {
    s += i ? "x" : "";
    const GridDim &g = l.grid[i];
    s += g.tokenTile == 0 ? std::to_string(g.fixed)
                          : "(" + std::to_string(g.fixed) +
                                "/T:" + std::to_string(g.tokenTile) + ")";
  }
  s += " block " + std::to_string(l.block[0]) + "x" +
       std::to_string(l.block[1]) + "x" + std::to_string(l.block[2]);
  s += " smem " + std::to_string(l.sharedMemoryBytes);
  if (l.workspaceBytes)
    s += " workspace " + std::to_string(l.workspaceBytes);
  if (l.tokenSlice)
    s += " token slices " + std::to_string(l.tokenSlice);
  return s;
}

/// "123456 B (120.56 KiB)".
static std::string bytesString(uint64_t n) {
  std::string s = std::to_string(n) + " B";
  if (n >= 1024)
    s += " (" + v4::formatBytes(n) + ")";
  return s;
}

static std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += shape[i] == -1 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

static std::string idList(const std::vector<uint32_t> &ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

static std::string featureString(uint64_t f) {
  std::string s;
  auto add = [&](uint64_t bit, const char *name) {
    if (f & bit)
      s += (s.empty() ? "" : ", ") + std::string(name);
  };
  add(kFeatureFP8, "fp8");
  add(kFeatureFP4, "fp4");
  add(kFeatureEngram, "engram");
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)f);
  return std::string(buf) + (s.empty() ? "" : " (" + s + ")");
}

static std::string location(const Artifact &a, int32_t index) {
  if (index < 0 || size_t(index) >= a.debugLocations().size())
    return "";
  const DebugLocation &l = a.debugLocations()[size_t(index)];
  std::string s = l.name;
  if (!l.file.empty())
    s += " (" + l.file + ":" + std::to_string(l.line) + ":" +
         std::to_string(l.column) + ")";
  return s;
}

static void print(const Artifact &a) {
  const Versions &v = a.versions();
  std::printf("artifact %s\n", a.source().c_str());
  std::printf("format %u.%u  compiler '%s'  mlir '%s'\n", a.formatMajor(),
              a.formatMinor(), v.compiler.c_str(), v.mlir.c_str());
  std::printf("file %llu bytes  flatbuffer %llu bytes\n",
              (unsigned long long)a.fileSize(),
              (unsigned long long)a.flatbufferSize());
  std::string targets;
  for (Target t : a.targets())
    targets += (targets.empty() ? "" : ",") + std::string(targetName(t));
  std::printf("target %s  features %s\n", targets.c_str(),
              featureString(a.features()).c_str());
  std::printf("bounds batch %lld  max_context %lld  max_chunk %lld\n",
              (long long)a.bounds().batch, (long long)a.bounds().maxContext,
              (long long)a.bounds().maxChunk);
  std::printf("tokens bos %lld  eos %lld\n",
              (long long)a.description().tokens.bos,
              (long long)a.description().tokens.eos);
  std::printf("numerics %s  fake-quant %s  sum-order %s\n",
              v4::numericsModeName(a.description().numerics),
              v4::fakeQuantModeName(a.description().fakeQuant),
              v4::sumOrderName(a.description().sumOrder));

  // A partitioned plan: every rank runs it with its own shards, so the
  // memory below is each rank's.
  if (a.worldSize() > 1) {
    const v4::artifact::Description &d = a.description();
    std::string how;
    if (d.tensorParallel > 1)
      how = "tensor-parallel";
    if (d.expertParallel > 1)
      how += std::string(how.empty() ? "" : ", ") + "expert-parallel";
    std::printf("partition %s over %u ranks%s (memory per rank)\n", how.c_str(),
                a.worldSize(),
                d.dataParallelAttention ? ", data-parallel attention" : "");
  }
  // Memory at the compiled bounds: weights are per model, the rest per
  // session.
  Artifact::MemoryTotals m = a.memoryTotals();
  std::printf("memory weights %s  per session: state %s  arena %s  "
              "other activations %s  inputs/outputs %s  total %s\n",
              bytesString(m.weights).c_str(), bytesString(m.state).c_str(),
              bytesString(m.arena).c_str(),
              bytesString(m.otherActivations).c_str(),
              bytesString(m.io).c_str(), bytesString(m.session()).c_str());

  std::printf("code objects: %zu\n", a.codeObjects().size());
  for (size_t i = 0; i < a.codeObjects().size(); ++i) {
    const CodeObject &c = a.codeObjects()[i];
    std::printf("  [%zu] %s %s offset %llu size %llu%s%s\n", i,
                targetName(c.target), codeFormatName(c.format),
                (unsigned long long)c.offset, (unsigned long long)c.size,
                c.isa.empty() ? "" : " isa ", c.isa.c_str());
  }
  // Each target's table: the artifact's, then its kernel sets (1.5).
  for (Target t : a.targets()) {
    const std::vector<Kernel> &table = *a.kernelsFor(t);
    if (t == a.target())
      std::printf("kernels: %zu\n", table.size());
    else
      std::printf("kernels of %s: %zu\n", targetName(t), table.size());
    for (size_t i = 0; i < table.size(); ++i) {
      const Kernel &k = table[i];
      std::printf(
          "  [%zu] %s  code %u  symbol %s  buffers %u  scalars %u  "
          "launch %s%s%s\n",
          i, k.name.c_str(), k.codeObject, k.entrySymbol.c_str(),
          k.numBufferArgs, k.numScalarArgs, launchString(k.launch).c_str(),
          k.debugLocation.empty() ? "" : "  loc ", k.debugLocation.c_str());
    }
  }
  std::printf("buffers: %zu\n", a.buffers().size());
  for (const Buffer &b : a.buffers())
    std::printf("  id %u  %s %s %s  align %u  max %llu bytes%s%s%s\n", b.id,
                bufferKindName(b.kind), dtypeName(b.dtype),
                shapeString(b.shape).c_str(), b.alignment,
                (unsigned long long)a.bufferBytes(b, a.bounds().maxChunk),
                b.role.empty() ? "" : "  role ", b.role.c_str(),
                b.arenaOffset < 0
                    ? ""
                    : ("  arena +" + std::to_string(b.arenaOffset)).c_str());
  std::printf("state specs: %zu\n", a.stateSpecs().size());
  for (const StateSpec &s : a.stateSpecs()) {
    std::printf("  %s  reset %s", s.name.c_str(), resetKindName(s.reset));
    if (s.reset == ResetKind::PadId)
      std::printf(" %lld", (long long)s.padValue);
    std::printf("  buffers %s\n", idList(s.buffers).c_str());
  }
  std::printf("entry points: %zu\n", a.entryPoints().size());
  for (const EntryPoint &e : a.entryPoints()) {
    std::printf("  %s: %zu steps\n", e.name.c_str(), e.steps.size());
    for (size_t i = 0; i < e.steps.size(); ++i) {
      const Step &s = e.steps[i];
      std::string scalars = "[";
      for (size_t j = 0; j < s.scalars.size(); ++j) {
        scalars += j ? ", " : "";
        scalars += s.scalars[j].kind == ScalarKind::Constant
                       ? std::to_string(s.scalars[j].value)
                       : scalarKindName(s.scalars[j].kind);
      }
      scalars += "]";
      std::string loc = location(a, s.debugLocation);
      std::printf(
          "    [%zu] %s  buffers %s  scalars %s%s%s%s%s\n", i,
          s.collective != Collective::None
              ? (std::string(collectiveName(s.collective)) + " (collective)")
                    .c_str()
              : a.kernels()[s.kernel].name.c_str(),
          idList(s.buffers).c_str(), scalars.c_str(),
          s.concurrent ? "  concurrent" : "",
          s.onlyForOutputs.empty()
              ? ""
              : ("  only for outputs " + idList(s.onlyForOutputs)).c_str(),
          loc.empty() ? "" : "  loc ", loc.c_str());
    }
  }
  std::printf("parameters: %zu\n", a.parameters().size());
  for (const Parameter &p : a.parameters()) {
    std::string shard;
    if (p.sliceDim >= 0) {
      shard = "  slice of " + std::to_string(p.shards) + " along dim " +
              std::to_string(p.sliceDim) + " of " +
              shapeString(v4::artifact::checkpointShape(p));
      if (p.sliceBlock != p.sliceBlockOf)
        shard += " (entries of " + std::to_string(p.sliceBlock) +
                 " rows, the checkpoint's of " +
                 std::to_string(p.sliceBlockOf) + ")";
    } else if (p.shards > 1) {
      shard = "  shard of " + std::to_string(p.shards) +
              " (rank r: members r*" + std::to_string(p.shape[0]) + "..)";
    }
    std::printf("  %s  %s %s  -> buffer %u%s\n", p.name.c_str(),
                dtypeName(p.dtype), shapeString(p.shape).c_str(), p.buffer,
                shard.c_str());
  }
  std::printf("debug locations: %zu\n", a.debugLocations().size());
  for (size_t i = 0; i < a.debugLocations().size(); ++i)
    std::printf("  [%zu] %s\n", i, location(a, int32_t(i)).c_str());
}

/// Writes `span` to `path` through the tools' one output writer
/// (base/OutputFile.h), or to stdout for "-". Returns an exit code.
static int writeOutput(const std::string &path, ByteSpan span) {
  if (path == "-" && ::isatty(STDOUT_FILENO))
    return usage("refusing to write binary code to a terminal; use -o");
  if (v4::Status s = v4::writeOutputFile(path, span.data, span.size); !s) {
    std::fprintf(stderr, "v4-dump: error: %s\n", s.message().c_str());
    return 3;
  }
  return 0;
}

int main(int argc, char **argv) {
  bool verifyOnly = false, listKernels = false;
  long long dumpCode = -1;
  std::string output, input;
  CLI::App cli(std::string(), "v4-dump");
  app = &cli;
  v4::cli::setup(
      cli,
      "Prints a v4 artifact: versions, target, bounds, code objects,\n"
      "kernels, buffers, state, entry points with their steps, "
      "parameters.",
      kUsageLines, kFooter);
  cli.add_option("model.v4a", input, "The artifact");
  cli.add_flag("--verify", verifyOnly,
               "Only verify (all layers); print nothing on success");
  cli.add_flag("--list-kernels", listKernels, "Print one line per kernel");
  cli.add_option("--dump-code", dumpCode,
                 "Write the image of code object <n> to -o")
      ->type_name("<n>")
      ->check(v4::cli::rule<long long>("a code object index >= 0",
                                       [](long long n) { return n >= 0; }));
  cli.add_option("-o", output,
                 "Output of --dump-code ('-' for stdout, not a tty)")
      ->type_name("<file>");
  if (int code = v4::cli::parse(cli, argc, argv); code != v4::cli::kContinue)
    return code;
  if (input.empty())
    return usage("no input artifact");
  if (int(verifyOnly) + int(listKernels) + int(dumpCode >= 0) > 1)
    return usage("--verify, --list-kernels and --dump-code are exclusive");
  if (dumpCode >= 0 && output.empty())
    return usage("--dump-code needs -o <file>");
  if (dumpCode < 0 && !output.empty())
    return usage("-o is only used with --dump-code");

  if (!output.empty()) {
    // Checked before the work (RELIABILITY.md §2.11).
    if (v4::Status s = v4::checkOutputPath(output); !s) {
      std::fprintf(stderr, "v4-dump: error: -o %s\n", s.message().c_str());
      return 3;
    }
  }
  auto artifact = Artifact::loadFile(input);
  if (!artifact) {
    std::fprintf(stderr, "v4-dump: error: %s\n",
                 artifact.status().message().c_str());
    return artifact.status().rule() == "IO" ? 3 : 1;
  }
  const Artifact &a = *artifact;
  if (verifyOnly) {
    return 0;
  }
  if (listKernels) {
    for (size_t i = 0; i < a.kernels().size(); ++i)
      std::printf("%zu %s %s\n", i, a.kernels()[i].name.c_str(),
                  a.kernels()[i].entrySymbol.c_str());
    return 0;
  }
  if (dumpCode >= 0) {
    if (size_t(dumpCode) >= a.codeObjects().size())
      return usage("--dump-code=" + std::to_string(dumpCode) + ": " + input +
                   " has " + std::to_string(a.codeObjects().size()) +
                   " code objects");
    return writeOutput(output, a.code(size_t(dumpCode)));
  }
  print(a);
  return 0;
}
