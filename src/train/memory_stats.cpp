#include "train/memory_stats.hpp"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace medgpt::train {

namespace {

std::atomic<std::int64_t> live{0}, peak{0};

// The wrapped allocator's DataPtr of each live block, by address: the counted DataPtr's context is
// its data pointer, as LibTorch's raw_allocate/raw_deallocate require.
std::mutex blocks_mutex;
std::unordered_map<void*, std::pair<at::DataPtr, std::size_t>>& blocks() {
  static auto* m = new std::unordered_map<void*, std::pair<at::DataPtr, std::size_t>>();  // outlives static tensors
  return *m;
}

void release(void* ptr) {
  at::DataPtr inner;
  {
    std::lock_guard<std::mutex> lock(blocks_mutex);
    auto it = blocks().find(ptr);
    if (it == blocks().end()) return;
    inner = std::move(it->second.first);
    live -= static_cast<std::int64_t>(it->second.second);
    blocks().erase(it);
  }
  // `inner` frees the block through the wrapped allocator's deleter here, outside the lock.
}

at::DataPtr counted(at::Allocator* inner, std::size_t n) {
  at::DataPtr d = inner->allocate(n);
  void* data = d.get();
  const at::Device device = d.device();
  if (!data) return d;  // zero bytes: nothing to count
  {
    std::lock_guard<std::mutex> lock(blocks_mutex);
    blocks().emplace(data, std::make_pair(std::move(d), n));
  }
  const std::int64_t now = live += static_cast<std::int64_t>(n);
  for (std::int64_t p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {}
  return at::DataPtr(data, data, &release, device);
}

// LibTorch 2.3 made Allocator::allocate non-const; the specialisation that matches the installed
// headers is the one instantiated (copy_data: 2.x's, a plain member before).
constexpr bool kConstAllocate = std::is_same<decltype(&at::Allocator::allocate), at::DataPtr (at::Allocator::*)(std::size_t) const>::value;

template <bool Const, class Base = at::Allocator>
struct Counting;

template <class Base>
struct Counting<true, Base> : Base {
  at::Allocator* inner = nullptr;
  at::DataPtr allocate(std::size_t n) const override { return counted(inner, n); }
  at::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
};

template <class Base>
struct Counting<false, Base> : Base {
  at::Allocator* inner = nullptr;
  at::DataPtr allocate(std::size_t n) override { return counted(inner, n); }
  at::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
};

bool installed = false;

}  // namespace

void count_tensor_memory() {
  if (installed) return;
  static Counting<kConstAllocate> allocator;
  allocator.inner = c10::GetCPUAllocator();
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
  installed = true;
}

void restart_tensor_peak() { peak = live.load(); }

MemoryPeak memory_peak() {
  MemoryPeak m;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) m.resident = std::stod(line.substr(6)) * 1024.0;  // kB
  if (installed) m.tensors = static_cast<double>(peak.load());
  return m;
}

}  // namespace medgpt::train
