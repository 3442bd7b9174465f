//===- CPUDevice.cpp - the host as a device -------------------------------===//
#include "runtime/src/devices/CPUDevice.h"
#include "runtime/src/devices/CUDADevice.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace v4::rt {

namespace art = v4::artifact;

Device::~Device() = default;
Device::Recording::~Recording() = default;
Device::Queue::~Queue() = default;

Expected<std::unique_ptr<Device::Queue>> Device::createQueue() {
  return std::make_unique<Queue>();
}

static Status noRecording(const char *device) {
  return Status::error(StatusCode::Internal, "RT-7",
                       std::string(device) + " device: cannot record launches");
}
Status Device::launchConcurrent(const std::vector<Launch> &group,
                                int64_t tokens, Queue *queue) {
  for (const Launch &l : group)
    if (Status s = launch(l.kernel, *l.args, tokens, queue); !s)
      return s;
  return Status::success();
}

Status Device::beginRecording(Queue *) { return noRecording(name()); }
Expected<std::unique_ptr<Device::Recording>> Device::endRecording(Queue *) {
  return noRecording(name());
}
Status Device::replay(const Recording &, Queue *) {
  return noRecording(name());
}
Expected<bool> Device::queueIdle(Queue *) {
  return Status::error(StatusCode::Internal, "RT-7",
                       std::string(name()) + " device: no streams to query");
}

Expected<DeviceSpec> parseDeviceSpec(const std::string &name,
                                     const std::string &what) {
  if (name == "cpu")
    return DeviceSpec{art::Target::CPU, 0};
  if (name == "cuda")
    return DeviceSpec{art::Target::SM90A, 0};
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 9 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos)
    return DeviceSpec{art::Target::SM90A, std::stoi(name.substr(5))};
  return Status::error(StatusCode::InvalidArgument, "ARG",
                       what + ": unknown device '" + name +
                           "' (cpu, cuda, or cuda:N for CUDA device N)");
}

std::string deviceSpecName(const DeviceSpec &spec) {
  if (spec.target == art::Target::CPU)
    return "cpu";
  return "cuda:" + std::to_string(spec.ordinal);
}

Expected<std::unique_ptr<Device>> createDevice(art::Target target,
                                               const std::string &source,
                                               unsigned threads, int ordinal) {
  if (target == art::Target::CPU)
    return std::unique_ptr<Device>(new CPUDevice(threads));
  if (target == art::Target::SM90A)
    return CUDADevice::open(source, ordinal);
  return Status::error(StatusCode::Incompatible, "RT-3",
                       source + ": artifact targets " +
                           art::targetName(target) +
                           "; this runtime has no device for it");
}

CPUDevice::CPUDevice(unsigned threads)
    : pool(std::make_unique<ThreadPool>(resolveThreadCount(threads))) {}

CPUDevice::~CPUDevice() {
  for (void *library : libraries)
    dlclose(library);
}

uint64_t CPUDevice::availableMemory() const {
  // MemAvailable: what can be allocated without swapping (page cache and
  // reclaimable memory included); the physical free pages where the kernel
  // does not report it.
  if (FILE *f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found)
      return uint64_t(kib) * 1024;
  }
  long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : 0;
}

Expected<DeviceBuffer> CPUDevice::mapHostMemory(const void *data,
                                                size_t bytes) {
#ifdef MADV_POPULATE_READ
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && bytes > 0) {
    auto first =
        reinterpret_cast<uintptr_t>(data) / uintptr_t(page) * uintptr_t(page);
    auto end = reinterpret_cast<uintptr_t>(data) + bytes;
    // A hint: EINVAL (a kernel before 5.14) or ENOMEM changes nothing.
    (void)::madvise(reinterpret_cast<void *>(first), end - first,
                    MADV_POPULATE_READ);
  }
#endif
  return DeviceBuffer{const_cast<void *>(data), bytes};
}

Expected<DeviceBuffer> CPUDevice::allocate(size_t bytes) {
  size_t rounded = bytes < 64 ? 64 : (bytes + 63) / 64 * 64;
  void *data = std::aligned_alloc(64, rounded);
  if (!data)
    return Status::error(StatusCode::ResourceExhausted, "RT-6",
                         "out of host memory for a buffer of " +
                             std::to_string(bytes) + " bytes");
  std::memset(data, 0, rounded);
  return DeviceBuffer{data, bytes};
}

void CPUDevice::release(DeviceBuffer buffer) { std::free(buffer.address); }

/// RT-7: a copy of `bytes` at `offset` stays inside a buffer of `size`.
Status checkCopy(const char *what, size_t offset, size_t bytes, size_t size) {
  if (offset <= size && bytes <= size - offset)
    return Status::success();
  return Status::error(StatusCode::Internal, "RT-7",
                       std::string(what) + " of " + std::to_string(bytes) +
                           " bytes at offset " + std::to_string(offset) +
                           " overruns a buffer of " + std::to_string(size));
}

Status checkFill(size_t offset, size_t bytes, size_t size,
                 size_t patternBytes) {
  if (Status s = checkCopy("fill", offset, bytes, size); !s)
    return s;
  if (patternBytes == 0 || bytes % patternBytes)
    return Status::error(StatusCode::Internal, "RT-7",
                         "fill of " + std::to_string(bytes) +
                             " bytes with a pattern of " +
                             std::to_string(patternBytes));
  return Status::success();
}

Status CPUDevice::upload(DeviceBuffer dst, size_t offset, const void *src,
                         size_t bytes, Queue *) {
  if (Status s = checkCopy("upload", offset, bytes, dst.bytes); !s)
    return s;
  std::memcpy(static_cast<char *>(dst.address) + offset, src, bytes);
  return Status::success();
}

Status CPUDevice::download(void *dst, DeviceBuffer src, size_t offset,
                           size_t bytes, Queue *) {
  if (Status s = checkCopy("download", offset, bytes, src.bytes); !s)
    return s;
  std::memcpy(dst, static_cast<const char *>(src.address) + offset, bytes);
  return Status::success();
}

Status CPUDevice::fill(DeviceBuffer dst, size_t offset, size_t bytes,
                       const void *pattern, size_t patternBytes, Queue *) {
  if (Status s = checkFill(offset, bytes, dst.bytes, patternBytes); !s)
    return s;
  auto *p = static_cast<char *>(dst.address) + offset;
  for (size_t at = 0; at < bytes; at += patternBytes)
    std::memcpy(p + at, pattern, patternBytes);
  return Status::success();
}

namespace {

Status writeAll(int fd, art::ByteSpan code) {
  size_t done = 0;
  while (done < code.size) {
    ssize_t n = ::write(fd, code.data + done, code.size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return Status::error(StatusCode::Unavailable, "IO",
                           std::string("cannot write the kernels: ") +
                               std::strerror(n < 0 ? errno : EIO));
    done += static_cast<size_t>(n);
  }
  return Status::success();
}

/// dlopens a shared object held in memory: from an anonymous memory file,
/// or from a private file under $TMPDIR (unlinked right away; the mapping
/// keeps it alive) where memfd_create is unavailable.
Expected<void *> openSharedObject(art::ByteSpan code, const std::string &what) {
  std::string path;
  std::string unlinkPath;
  std::vector<int> fds;
  int fd = memfd_create("v4rt-kernels", MFD_CLOEXEC);
  if (fd >= 0) {
    // The dynamic loader finds a library by its name first: one loaded
    // before from a memory file of the same descriptor number, and not
    // unloaded (dlclose need not unload), would be returned instead of
    // ours. Move to a descriptor number whose path names no loaded object.
    for (;;) {
      fds.push_back(fd);
      path = "/proc/self/fd/" + std::to_string(fd);
      void *loaded = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (!loaded)
        break;
      dlclose(loaded);
      fd = fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
      if (fd < 0) {
        int error = errno;
        for (int f : fds)
          ::close(f);
        return Status::error(StatusCode::Unavailable, "IO",
                             "cannot duplicate the memory file of " + what +
                                 ": " + std::strerror(error));
      }
    }
  } else {
    const char *dir = std::getenv("TMPDIR");
    unlinkPath =
        std::string(dir && *dir ? dir : "/tmp") + "/v4rt-kernels-XXXXXX";
    fd = mkostemp(unlinkPath.data(), O_CLOEXEC);
    if (fd < 0)
      return Status::error(StatusCode::Unavailable, "IO",
                           "cannot create a memory file or a temporary file "
                           "in $TMPDIR for " +
                               what + ": " + std::strerror(errno));
    path = unlinkPath;
    fds.push_back(fd);
  }
  Status written = writeAll(fd, code);
  void *library =
      written.ok() ? dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) : nullptr;
  std::string why =
      written.ok() ? (library ? "" : dlerror()) : written.message();
  for (int f : fds)
    ::close(f);
  if (!unlinkPath.empty())
    ::unlink(unlinkPath.c_str());
  if (!library) {
    if (why.find("undefined symbol: __asan_") != std::string::npos)
      why += " (its kernels were compiled with v4c --sanitize-kernels="
             "address: load them in a runtime built with "
             "V4_SANITIZE=address, or recompile without the flag)";
    return Status::error(StatusCode::Unavailable, "RT-4",
                         "cannot load " + what + ": " + why);
  }
  return library;
}

} // namespace

Status requireHostISA(const std::string &isa, const std::string &what,
                      bool supported) {
  if (supported)
    return Status::success();
  return Status::error(StatusCode::Incompatible, "RT-4",
                       what + " needs an " + isa + " CPU (" +
                           hostISAFeatures(isa) +
                           "), which this machine lacks: recompile the model "
                           "with v4c --cpu=x86-64 (or the level this CPU "
                           "has)");
}

Status CPUDevice::loadKernels(const art::Artifact &a) {
  // The host objects only: a multi-target artifact also holds others'.
  std::vector<void *> loaded(a.codeObjects().size(), nullptr);
  for (size_t i = 0; i < a.codeObjects().size(); ++i) {
    const art::CodeObject &c = a.codeObjects()[i];
    if (c.target != art::Target::CPU)
      continue;
    std::string what = a.source() + ": code object " + std::to_string(i);
    if (c.format != art::CodeFormat::HostSharedObject)
      return Status::error(StatusCode::Incompatible, "RT-4",
                           what + " is " + art::codeFormatName(c.format) +
                               "; the CPU device loads host shared objects");
    if (!c.isa.empty())
      if (Status s = requireHostISA(c.isa, what, hostSupportsISA(c.isa)); !s)
        return s;
    auto library = openSharedObject(a.code(i), what);
    if (!library)
      return library.status();
    libraries.push_back(*library);
    loaded[i] = *library;
  }
  const std::vector<art::Kernel> *kernels = a.kernelsFor(art::Target::CPU);
  if (!kernels)
    return Status::error(StatusCode::Incompatible, "RT-3",
                         a.source() + ": the artifact has no cpu kernels");
  for (const art::Kernel &k : *kernels) {
    // AF-8: the code object is in range and of this table's target.
    void *sym = dlsym(loaded[k.codeObject], k.entrySymbol.c_str());
    if (!sym)
      return Status::error(StatusCode::Incompatible, "RT-4",
                           a.source() + ": kernel '" + k.name +
                               "' has no symbol '" + k.entrySymbol +
                               "' in its code object");
    entries.push_back(reinterpret_cast<abi::KernelEntry>(sym));
    launches.push_back(k.launch);
  }
  return Status::success();
}

namespace {

/// One dispatch's blocks: the descriptors (shared, read-only) and the grid.
struct GridCall {
  abi::KernelEntry entry;
  void *const *pointers;
  size_t numPointers;
  int64_t grid[3];
};

void runBlock(void *context, uint64_t index) {
  const auto &call = *static_cast<const GridCall *>(context);
  abi::LaunchBlock block;
  block.x = int64_t(index % uint64_t(call.grid[0]));
  block.y = int64_t(index / uint64_t(call.grid[0]) % uint64_t(call.grid[1]));
  block.z = int64_t(index / uint64_t(call.grid[0] * call.grid[1]));
  block.gridX = call.grid[0];
  block.gridY = call.grid[1];
  block.gridZ = call.grid[2];
  // The buffers, then the launch block (KernelABI.h).
  constexpr size_t kInline = 64;
  void *inlineArgs[kInline];
  std::vector<void *> heapArgs;
  void **args = inlineArgs;
  if (call.numPointers + 1 > kInline) {
    heapArgs.resize(call.numPointers + 1);
    args = heapArgs.data();
  }
  for (size_t i = 0; i < call.numPointers; ++i)
    args[i] = call.pointers[i];
  args[call.numPointers] = &block;
  call.entry(args);
}

/// Slice `index` of a token-sliced launch: the kernel's one block on the
/// slice's descriptors (numPointers of them from index * numPointers).
void runSlice(void *context, uint64_t index) {
  const auto &call = *static_cast<const GridCall *>(context);
  GridCall one = call;
  one.pointers = call.pointers + index * call.numPointers;
  runBlock(&one, 0);
}

} // namespace

/// One launch of a group: its grid's blocks, or its token slices.
struct CPUDevice::PreparedCall {
  GridCall call;
  uint64_t blocks = 0;
  bool sliced = false;
  /// Where its descriptor words and pointers start in the group's storage
  /// (pointers are set once the storage stops growing).
  size_t word = 0, pointer = 0;
};

/// The blocks of a group's launches as one index space: launch j owns
/// [starts[j], starts[j + 1]).
struct CPUDevice::GroupCall {
  const PreparedCall *calls;
  const uint64_t *starts;
  size_t count;
};

/// A queue of the CPU device: launches run when called, unless the queue
/// is recording.
class CPUDevice::CPUQueue final : public Device::Queue {
public:
  std::unique_ptr<CPURecording> recording;
};

/// The prepared groups of a recording, in launch order.
class CPUDevice::CPURecording final : public Device::Recording {
public:
  explicit CPURecording(const CPUDevice *device) : device(device) {}
  const CPUDevice *device;
  /// unique_ptr: each group's grid calls point into its own storage.
  std::vector<std::unique_ptr<PreparedGroup>> groups;
};

Expected<std::unique_ptr<Device::Queue>> CPUDevice::createQueue() {
  return std::unique_ptr<Queue>(new CPUQueue);
}

Status CPUDevice::beginRecording(Queue *queue) {
  auto *q = dynamic_cast<CPUQueue *>(queue);
  if (!q)
    return Status::error(StatusCode::Internal, "RT-7",
                         "cpu device: recording needs a queue");
  if (q->recording)
    return Status::error(StatusCode::Internal, "RT-7",
                         "cpu device: the queue is already recording");
  q->recording = std::make_unique<CPURecording>(this);
  return Status::success();
}

Expected<std::unique_ptr<Device::Recording>>
CPUDevice::endRecording(Queue *queue) {
  auto *q = dynamic_cast<CPUQueue *>(queue);
  if (!q || !q->recording)
    return Status::error(StatusCode::Internal, "RT-7",
                         "cpu device: endRecording without beginRecording");
  return std::unique_ptr<Recording>(std::move(q->recording));
}

Status CPUDevice::replay(const Recording &recording, Queue *) {
  const auto *r = dynamic_cast<const CPURecording *>(&recording);
  if (!r || r->device != this)
    return Status::error(StatusCode::Internal, "RT-7",
                         "cpu device: a recording of another device");
  std::lock_guard<std::mutex> lock(launchMutex);
  for (const std::unique_ptr<PreparedGroup> &g : r->groups)
    runPrepared(*g);
  return Status::success();
}

void CPUDevice::runGroupBlock(void *context, uint64_t index) {
  const auto &g = *static_cast<const GroupCall *>(context);
  size_t j =
      size_t(std::upper_bound(g.starts, g.starts + g.count, index) - g.starts) -
      1;
  void *call = const_cast<GridCall *>(&g.calls[j].call);
  (g.calls[j].sliced ? runSlice : runBlock)(call, index - g.starts[j]);
}

Status CPUDevice::launch(uint32_t kernel, const std::vector<LaunchArg> &args,
                         int64_t tokens, Queue *queue) {
  std::lock_guard<std::mutex> lock(launchMutex);
  const Launch one{kernel, &args};
  return launchLocked(&one, 1, tokens, queue);
}

Status CPUDevice::launchConcurrent(const std::vector<Launch> &group,
                                   int64_t tokens, Queue *queue) {
  std::lock_guard<std::mutex> lock(launchMutex);
  return launchLocked(group.data(), group.size(), tokens, queue);
}

Status CPUDevice::launchLocked(const Launch *group, size_t count,
                               int64_t tokens, Queue *queue) {
  if (auto *q = dynamic_cast<CPUQueue *>(queue); q && q->recording) {
    auto g = std::make_unique<PreparedGroup>();
    if (Status s = prepare(group, count, tokens, *g); !s)
      return s;
    q->recording->groups.push_back(std::move(g));
    return Status::success();
  }
  if (!current)
    current = std::make_unique<PreparedGroup>();
  if (Status s = prepare(group, count, tokens, *current); !s)
    return s;
  runPrepared(*current);
  return Status::success();
}

Status CPUDevice::prepare(const Launch *group, size_t count, int64_t tokens,
                          PreparedGroup &out) {
  std::vector<PreparedCall> &prepared = out.calls;
  prepared.clear();
  size_t totalWords = 0, totalPointers = 0;
  for (size_t j = 0; j < count; ++j) {
    const Launch &l = group[j];
    if (l.kernel >= entries.size())
      return Status::error(StatusCode::Internal, "RT-7",
                           "launch of kernel " + std::to_string(l.kernel) +
                               ", but " + std::to_string(entries.size()) +
                               " are loaded");
    const std::vector<LaunchArg> &args = *l.args;
    size_t total = 0;
    for (const LaunchArg &arg : args)
      total += abi::descriptorWords(arg.sizes.size());
    PreparedCall p;
    p.call = GridCall{entries[l.kernel], nullptr, args.size(), {1, 1, 1}};
    p.word = totalWords;
    p.pointer = totalPointers;
    // A token-sliced kernel (artifact Launch.tokenSlice): one call per
    // slice of tokens, each on descriptors of its slice, in parallel.
    if (uint64_t slice = launches[l.kernel].tokenSlice;
        slice != 0 && uint64_t(tokens) > slice) {
      p.sliced = true;
      p.blocks = (uint64_t(tokens) + slice - 1) / slice;
    } else {
      p.blocks = 1;
      for (int d = 0; d < 3; ++d) {
        uint64_t g = launches[l.kernel].grid[d].blocks(tokens);
        if (g == 0 || g > (uint64_t(1) << 31))
          return Status::error(StatusCode::Internal, "RT-7",
                               "kernel " + std::to_string(l.kernel) +
                                   " has a grid of " + std::to_string(g) +
                                   " blocks in dimension " + std::to_string(d));
        p.call.grid[d] = int64_t(g);
        p.blocks *= g;
      }
    }
    uint64_t copies = p.sliced ? p.blocks : 1;
    totalWords += total * copies;
    totalPointers += args.size() * copies;
    prepared.push_back(p);
  }
  std::vector<int64_t> &words = out.words;
  std::vector<void *> &pointers = out.pointers;
  words.assign(totalWords, 0);
  pointers.assign(totalPointers, nullptr);
  for (size_t j = 0; j < count; ++j) {
    PreparedCall &p = prepared[j];
    const std::vector<LaunchArg> &args = *group[j].args;
    size_t word = p.word;
    for (uint64_t c = 0; c < (p.sliced ? p.blocks : 1); ++c) {
      int64_t first = 0, tokensInSlice = tokens;
      if (p.sliced) {
        uint64_t slice = launches[group[j].kernel].tokenSlice;
        first = int64_t(c * slice);
        tokensInSlice = std::min<int64_t>(int64_t(slice), tokens - first);
      }
      for (size_t i = 0; i < args.size(); ++i) {
        const LaunchArg &arg = args[i];
        auto *base = static_cast<char *>(arg.buffer.address);
        const int64_t *dims = arg.sizes.data();
        if (p.sliced && arg.tokenDim >= 0) {
          sliceSizes = arg.sizes;
          base += uint64_t(first) * arg.tokenBytes;
          sliceSizes[size_t(arg.tokenDim)] = tokensInSlice;
          dims = sliceSizes.data();
        }
        abi::writeDescriptor(base, dims, arg.sizes.size(), &words[word]);
        pointers[p.pointer + c * args.size() + i] = &words[word];
        word += abi::descriptorWords(arg.sizes.size());
      }
    }
    p.call.pointers = pointers.data() + p.pointer;
  }
  // The pool hands out indices in order: launches of fewer (so longer)
  // blocks first, so a one-block kernel starts at once beside the others'
  // blocks instead of after them.
  std::stable_sort(prepared.begin(), prepared.end(),
                   [](const PreparedCall &x, const PreparedCall &y) {
                     return x.blocks < y.blocks;
                   });
  out.starts.clear();
  out.blocks = 0;
  for (const PreparedCall &p : prepared) {
    out.starts.push_back(out.blocks);
    out.blocks += p.blocks;
  }
  return Status::success();
}

void CPUDevice::runPrepared(const PreparedGroup &g) {
  if (g.calls.size() == 1) {
    const PreparedCall &p = g.calls.front();
    pool->run(p.blocks, p.sliced ? runSlice : runBlock,
              const_cast<GridCall *>(&p.call));
    return;
  }
  GroupCall call{g.calls.data(), g.starts.data(), g.calls.size()};
  pool->run(g.blocks, runGroupBlock, &call);
}

} // namespace v4::rt
