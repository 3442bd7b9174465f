//===- MpiLeakSuppressions.cpp - LeakSanitizer and Open MPI's own memory --===//
//
// Open MPI keeps allocations past MPI_Finalize that LeakSanitizer reports at
// exit; the test programs that start MPI (v4-runtime-tests' singleton,
// v4-collectives-mpi-test) suppress leaks allocated inside MPI's libraries
// only. Outside sanitized builds nothing calls this hook.
//
//===----------------------------------------------------------------------===//

extern "C" __attribute__((used, visibility("default"))) const char *
__lsan_default_suppressions() {
  return "leak:libmpi.so\n"
         "leak:libopen-pal.so\n"
         "leak:libopen-rte.so\n"
         "leak:libpmix.so\n"
         "leak:libhwloc.so\n"
         "leak:libevent\n";
}
