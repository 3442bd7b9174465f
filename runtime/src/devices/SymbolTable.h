//===- SymbolTable.h - entry points of a dlopen()ed library ---*- C++ -*-===//
//-*-===//
//
// The one way the runtime fills a table of function pointers from a library
// it loads at run time (the CUDA driver, NCCL): each entry point is looked
// up with dlsym, and the names not found are collected for one error.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DEVICES_SYMBOLTABLE_H
#define V4_RUNTIME_SRC_DEVICES_SYMBOLTABLE_H

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace v4::rt {

class SymbolTable {
public:
  explicit SymbolTable(void *library) : library(library) {}
  /// Sets `fn` to the library's `symbol` (null when absent, then listed in
  /// missing()).
  template <typename Fn> void get(Fn &fn, const char *symbol) {
    void *p = dlsym(library, symbol);
    if (!p)
      absent += (absent.empty() ? "" : ", ") + std::string(symbol);
    fn = reinterpret_cast<std::remove_reference_t<Fn>>(p);
  }
  /// The symbols not found, comma-separated (empty: all found).
  const std::string &missing() const { return absent; }

private:
  void *library;
  std::string absent;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DEVICES_SYMBOLTABLE_H
