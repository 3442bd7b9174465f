//===- PhaseProgress.h - v4c's per-phase progress on stderr -----*- C++ -*-===//
//
// v4c reports each phase it runs (lowering/Pipelines.h: input, graph,
// dispatch, kernel, artifact) with its wall time, one line per phase when
// the phase ends, then the total:
//
//   v4c: [1/5] input 0.012 s
//   ...
//   v4c: total 3.456 s
//
// On (--progress): every line at once. Auto (the default): only when stderr
// is a terminal, and only for compiles longer than a second (the lines of
// phases that ended earlier are held back until then). Off
// (--no-progress, --progress=false): nothing.
//
//===----------------------------------------------------------------------===//
#ifndef V4_TOOLS_V4C_PHASEPROGRESS_H
#define V4_TOOLS_V4C_PHASEPROGRESS_H

#include "llvm/ADT/StringRef.h"

#include <chrono>
#include <string>

namespace v4 {

class PhaseProgress {
public:
  enum class Mode { Off, Auto, On };
  /// `steps`: how many phases will be reported.
  PhaseProgress(Mode mode, unsigned steps);

  /// Starts the next phase, ending the current one.
  void begin(llvm::StringRef phase);
  /// Ends the current phase (if any) and prints the total.
  void finish();

private:
  using Clock = std::chrono::steady_clock;
  void end();
  void emit(const std::string &line);

  bool enabled;
  bool always;
  unsigned steps;
  unsigned step = 0;
  std::string phase;
  Clock::time_point start, phaseStart;
  /// Lines held back until the compile has run for a second (Auto).
  std::string held;
};

} // namespace v4

#endif // V4_TOOLS_V4C_PHASEPROGRESS_H
