//===- PhaseProgress.cpp - v4c's per-phase progress on stderr -------------===//
#include "PhaseProgress.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

namespace v4 {

PhaseProgress::PhaseProgress(Mode mode, unsigned steps)
    : enabled(
          mode == Mode::On ||
          (mode == Mode::Auto && llvm::sys::Process::StandardErrIsDisplayed())),
      always(mode == Mode::On), steps(steps), start(Clock::now()),
      phaseStart(start) {}

void PhaseProgress::begin(llvm::StringRef name) {
  end();
  phase = name.str();
  ++step;
  phaseStart = Clock::now();
}

void PhaseProgress::end() {
  if (phase.empty())
    return;
  double seconds =
      std::chrono::duration<double>(Clock::now() - phaseStart).count();
  emit(llvm::formatv("v4c: [{0}/{1}] {2} {3:F3} s\n", step, steps, phase,
                     seconds)
           .str());
  phase.clear();
}

void PhaseProgress::finish() {
  end();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  emit(llvm::formatv("v4c: total {0:F3} s\n", seconds).str());
}

void PhaseProgress::emit(const std::string &line) {
  if (!enabled)
    return;
  held += line;
  // Auto: quiet for compiles under a second.
  if (!always && Clock::now() - start < std::chrono::seconds(1))
    return;
  llvm::errs() << held;
  llvm::errs().flush();
  held.clear();
}

} // namespace v4
