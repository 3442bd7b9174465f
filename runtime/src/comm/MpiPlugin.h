//===- MpiPlugin.h - the boundary between libv4rt and its MPI engine -*- C++
//-*-===//
//
// libv4rt-mpi.so (MpiCollectives.cpp, the only code that links MPI) exports
// one extern "C" factory; Collectives.cpp dlopen()s the plugin and calls it.
// The few facts both sides share (the rule id, how seconds print) are here,
// since the plugin calls nothing of libv4rt.
// The factory returns a new Collectives of the "mpi" engine, or null with the
// reason in the caller's buffer. Bump kMpiPluginInterface with any change of
// the Collectives class or of the factory, so that a plugin of another build
// is refused instead of called.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_COMM_MPIPLUGIN_H
#define V4_RUNTIME_SRC_COMM_MPIPLUGIN_H

#include <cstddef>
#include <cstdio>
#include <string>

namespace v4::rt {

class Collectives;

/// The rule of every collectives error but caller arguments ("ARG"), on
/// both sides of the boundary.
constexpr const char *kCollectivesRule = "RT-10";

/// Seconds as the collectives' messages print them ("2", "0.5").
inline std::string formatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

/// The plugin's file name (runtime/src/CMakeLists.txt: OUTPUT_NAME v4rt-mpi).
constexpr const char *kMpiPluginFileName = "libv4rt-mpi.so";
/// The factory's symbol.
constexpr const char *kMpiPluginFactorySymbol = "v4rt_mpi_collectives_open";
constexpr int kMpiPluginInterface = 3;

/// Returns a new "mpi" Collectives whose collectives time out after
/// `timeoutSeconds` (> 0), or null after writing why (NUL-terminated, no
/// rule tag) into `error[0, errorSize)`. `interfaceVersion` is the
/// caller's kMpiPluginInterface; another is refused.
using MpiPluginFactory = Collectives *(*)(int interfaceVersion,
                                          double timeoutSeconds, char *error,
                                          size_t errorSize);

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_COMM_MPIPLUGIN_H
