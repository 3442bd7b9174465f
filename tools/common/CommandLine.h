//===- CommandLine.h - the command line of the LLVM-free tools --*- C++ -*-===//
//
// v4-run, v4-dump and v4-tokenize link no LLVM, so they parse argv with
// CLI11 (Debian's libcli11-dev) through these few helpers; the LLVM-based
// tools use llvm::cl. Both kinds behave alike (docs/STYLE.md):
//   - `--help`/`-h` prints the tool's usage lines, options and exit codes
//     on stdout and exits 0; `--version` prints the one line of
//     v4::artifact::toolVersion and exits 0;
//   - a bad command line prints "TOOL: <flag>: <rule>" (an unknown option,
//     a missing or malformed value, an extra argument) on stderr and exits
//     2.
//
//===----------------------------------------------------------------------===//
#ifndef V4_TOOLS_COMMON_COMMANDLINE_H
#define V4_TOOLS_COMMON_COMMANDLINE_H

#include "runtime/artifact/Artifact.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

namespace v4::cli {

/// parse()'s answer when the tool should go on.
constexpr int kContinue = -1;
/// The exit code of a bad command line.
constexpr int kUsageError = 2;

/// CLI11's help, with the tool's own usage lines instead of the generated
/// "Usage: TOOL [OPTIONS] ARG" line.
class Formatter : public CLI::Formatter {
public:
  explicit Formatter(std::string usage) : usage(std::move(usage)) {}
  std::string make_usage(const CLI::App *, std::string) const override {
    return usage + "\n";
  }

private:
  std::string usage;
};

/// An app for `tool`: a one-line description, the usage lines (each
/// starting "usage: " or indented), --version, and a footer (exit codes).
inline void setup(CLI::App &app, const std::string &description,
                  const std::string &usage, const std::string &footer) {
  const std::string tool = app.get_name();
  app.description(description);
  app.formatter(std::make_shared<Formatter>(usage));
  app.footer(footer);
  app.set_version_flag("--version",
                       [tool] { return v4::artifact::toolVersion(tool); });
  // An unknown option or extra argument is reported by parse(), naming it.
  app.allow_extras();
}

/// Prints "TOOL: message" and where the options are on stderr; returns 2.
inline int usageError(const CLI::App &app, const std::string &message) {
  std::fprintf(stderr, "%s: %s\nRun '%s --help' for the options.\n",
               app.get_name().c_str(), message.c_str(), app.get_name().c_str());
  return kUsageError;
}

/// Parses argv: kContinue, or the exit code to return now (0 after --help
/// or --version, 2 after a usage error, printed).
inline int parse(CLI::App &app, int argc, char **argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &) {
    std::cout << app.help() << std::flush;
    return 0;
  } catch (const CLI::CallForVersion &e) {
    std::cout << e.what() << std::endl;
    return 0;
  } catch (const CLI::ParseError &e) {
    return usageError(app, e.what());
  }
  for (const std::string &arg : app.remaining())
    return usageError(app, (arg.size() > 1 && arg[0] == '-'
                                ? "unknown option '"
                                : "unexpected argument '") +
                               arg + "'");
  return kContinue;
}

/// A check that each value is a T for which `ok` holds; otherwise CLI11
/// reports "--flag: 'VALUE' is not RULE" (for example "--chunk: '0' is not
/// an integer >= 1").
template <typename T>
CLI::Validator rule(const std::string &rule, std::function<bool(T)> ok) {
  return CLI::Validator(
      [rule, ok](std::string &value) -> std::string {
        T parsed{};
        if (CLI::detail::lexical_cast(value, parsed) && ok(parsed))
          return "";
        return "'" + value + "' is not " + rule;
      },
      "");
}

} // namespace v4::cli

#endif // V4_TOOLS_COMMON_COMMANDLINE_H
