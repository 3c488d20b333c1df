// The mslemu driver: runs the kernels of one kernels.metal on the CPU with
// Metal's execution model, serving dispatch requests from the Go side
// (runtime/mslemu) over a pipe. The wire protocol is described in
// runtime/mslemu/doc.go; keep the two in step (protocolVersion).
//
// Execution model. Threadgroups of a grid are spread over a pool of OS
// threads (workers). A worker runs one threadgroup at a time: each thread
// of the threadgroup is a fiber with its own stack (guard page below it),
// switched in user space. A fiber runs until it returns, reaches
// threadgroup_barrier, or reaches a SIMD-group function; the scheduler
// then runs the next fiber of a run queue whose order is a permutation drawn
// from a PRNG seeded by (dispatch seed, threadgroup index). Threadgroup
// memory is filled with 0xFF bytes (NaN as float or half) before each
// threadgroup. A barrier releases when every thread waits at the same
// barrier; anything else is reported as divergence.
//
// This file must not include metal_compat.hpp: its macros break C++.

#include <mslemu/runtime.hpp>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#if !(defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)))
#define MSLEMU_UCONTEXT 1
#endif
#ifdef MSLEMU_UCONTEXT
#include <ucontext.h>
#endif

using namespace mslemu::rt;

namespace {

constexpr uint32_t kProtocolVersion = 1;
constexpr uint32_t kMaxThreadsPerThreadgroup = 1024;
constexpr uint32_t kMaxThreadgroupMemory = 32768;
constexpr uint32_t kMaxInlineBytes = 4096;

size_t g_page = 4096;
size_t g_stack_bytes = 256 * 1024;
// Fiber stacks are a multiple of 4 KiB apart, so without an offset every
// stack top would map to the same cache set and each switch would miss the
// cache (measured: 20% of the time on the first pop after the switch). Each
// fiber's stack starts (index % 1024) * 64 bytes lower, in extra space.
constexpr size_t kStackColourBytes = 64 * 1024;

// --------------------------------------------------------------------------
// Context switching.
//
// mslemu_switch(save, next) stores the current stack pointer (with the
// callee-saved registers pushed on it) in *save and resumes the context
// whose stack pointer is next. A new fiber's stack is laid out so that the
// first switch to it "returns" into mslemu_fiber_entry with its argument in
// a callee-saved register. ucontext is the portable fallback; its
// swapcontext saves and restores the signal mask with a system call on
// every switch, which is why it is not the default.

}  // namespace

extern "C" void mslemu_switch(void** save, void* next);
extern "C" void mslemu_fiber_entry();
extern "C" void mslemu_fiber_main(void* arg);

#if !defined(MSLEMU_UCONTEXT) && defined(__x86_64__)
asm(R"(
    .text
    .globl mslemu_switch
    .type mslemu_switch,@function
mslemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size mslemu_switch, .-mslemu_switch

    .globl mslemu_fiber_entry
    .type mslemu_fiber_entry,@function
mslemu_fiber_entry:
    movq %r12, %rdi
    andq $-16, %rsp
    call mslemu_fiber_main
    ud2
    .size mslemu_fiber_entry, .-mslemu_fiber_entry
)");

namespace {
void* init_stack(char* top, void* arg) {
  uintptr_t* sp = reinterpret_cast<uintptr_t*>(top);
  *--sp = 0;                                                   // alignment pad
  *--sp = reinterpret_cast<uintptr_t>(&mslemu_fiber_entry);   // return address
  *--sp = 0;                                                   // rbp
  *--sp = 0;                                                   // rbx
  *--sp = reinterpret_cast<uintptr_t>(arg);                    // r12
  *--sp = 0;                                                   // r13
  *--sp = 0;                                                   // r14
  *--sp = 0;                                                   // r15
  return sp;
}
}  // namespace

#elif !defined(MSLEMU_UCONTEXT) && defined(__aarch64__)
asm(R"(
    .text
    .globl mslemu_switch
    .type mslemu_switch,%function
mslemu_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size mslemu_switch, .-mslemu_switch

    .globl mslemu_fiber_entry
    .type mslemu_fiber_entry,%function
mslemu_fiber_entry:
    mov x0, x19
    bl mslemu_fiber_main
    brk #0
    .size mslemu_fiber_entry, .-mslemu_fiber_entry
)");

namespace {
void* init_stack(char* top, void* arg) {
  uintptr_t* sp = reinterpret_cast<uintptr_t*>(top) - 20;  // 160 bytes, 16-aligned
  memset(sp, 0, 160);
  sp[0] = reinterpret_cast<uintptr_t>(arg);                   // x19
  sp[11] = reinterpret_cast<uintptr_t>(&mslemu_fiber_entry);  // x30
  return sp;
}
}  // namespace
#endif

namespace {

// --------------------------------------------------------------------------
// Output helpers.

std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

[[noreturn]] void die(const std::string& msg) {
  std::string m = "mslemu driver: " + msg + "\n";
  ssize_t r = write(2, m.data(), m.size());
  (void)r;
  _exit(70);
}

// "0-15, 32, 40-47"
std::string ranges(const std::vector<uint32_t>& ids) {
  std::string s;
  size_t i = 0;
  int shown = 0;
  while (i < ids.size()) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) j++;
    if (!s.empty()) s += ", ";
    if (++shown > 8) {
      s += "...";
      break;
    }
    s += j == i ? strf("%u", ids[i]) : strf("%u-%u", ids[i], ids[j]);
    i = j + 1;
  }
  return s;
}

// --------------------------------------------------------------------------
// Buffers shared with the Go side.

struct Buffer {
  char* reserve = nullptr;  // mapping incl. trailing guard page
  size_t reserve_len = 0;
  char* base = nullptr;     // first byte of the buffer
  uint64_t size = 0;
  bool writable = false;
};
std::unordered_map<uint32_t, Buffer> g_buffers;

// --------------------------------------------------------------------------
// Dispatch state.

struct Job {
  const KernelInfo* k = nullptr;
  uint32_t tgs[3] = {1, 1, 1};   // threadgroups per grid
  uint32_t tpt[3] = {1, 1, 1};   // threads per (full) threadgroup
  uint32_t grid[3] = {0, 0, 0};  // threads per grid; all 0 for dispatchThreadgroups
  bool nonuniform = false;
  uint64_t seed = 0;
  uint64_t total = 0;  // number of threadgroups
  void* buffers[kMaxBindings] = {};
  uint32_t tglen[kMaxBindings] = {};
  // For fault reports: which buffer is bound where.
  int64_t bound_id[kMaxBindings];
  uint64_t bound_off[kMaxBindings] = {};
  std::vector<unsigned char> inline_bytes[kMaxBindings];

  std::atomic<uint64_t> next{0};
  std::atomic<bool> abort{false};
  std::mutex mu;
  uint64_t err_tg = UINT64_MAX;
  std::string err;

  void fail(uint64_t tg, const std::string& msg) {
    std::lock_guard<std::mutex> l(mu);
    if (tg < err_tg) {
      err_tg = tg;
      err = msg;
    }
    abort.store(true, std::memory_order_relaxed);
  }
};

enum FState : uint8_t { kRunnable, kAtBarrier, kAtSimd, kDone };

struct Worker;

struct Fiber {
  void* sp = nullptr;
  char* stack_lo = nullptr;  // lowest usable byte; the guard page is just below
  char* stack_hi = nullptr;
  Worker* w = nullptr;
  uint32_t index = 0;
  FState st = kDone;
  uint8_t parity = 0;
  const char* what = nullptr;
  const char* file = nullptr;
  int line = 0;
  Thread th;
#ifdef MSLEMU_UCONTEXT
  ucontext_t uc;
#endif
};

struct SimdGroup {
  uint32_t base = 0, width = 0;  // lanes are fibers [base, base+width)
  uint32_t live = 0;             // lanes that have not returned
  uint32_t arrived = 0;
  uint32_t arrived_mask = 0;
  const char* what = nullptr;
  const char* file = nullptr;
  int line = 0;
  uint32_t seq = 0;
  uint32_t active[2] = {0, 0};
  alignas(16) unsigned char slots[2][kSimdWidth][kSlotBytes];
};

struct Worker {
  int id = 0;
  std::vector<Fiber> fibers;  // sized once to 1024: pointers stay valid
  void* sched_sp = nullptr;
#ifdef MSLEMU_UCONTEXT
  ucontext_t sched_uc;
#endif
  Fiber* cur = nullptr;
  Job* job = nullptr;
  uint64_t tg_index = 0;
  uint32_t tg_pos[3] = {0, 0, 0};
  uint32_t tg_size[3] = {1, 1, 1};
  uint32_t n = 0;      // threads in the current threadgroup
  uint32_t ndone = 0;
  std::vector<uint32_t> queue;  // ring of fiber indices, capacity 1024
  uint32_t qhead = 0, qtail = 0;
  std::vector<SimdGroup> sg;
  Launch launch;
  char* tg_reserve[kMaxBindings] = {};
  size_t tg_reserve_len[kMaxBindings] = {};
  uint64_t rng = 0;
  bool failed = false;
  std::string err;
  sigjmp_buf fault_jmp;
  volatile sig_atomic_t in_fiber = 0;
  volatile int fault_sig = 0;
  void* volatile fault_addr = nullptr;
  Fiber* volatile fault_fiber = nullptr;
  char* altstack = nullptr;

  Worker() : fibers(kMaxThreadsPerThreadgroup), queue(kMaxThreadsPerThreadgroup), sg(kMaxThreadsPerThreadgroup / kSimdWidth) {}

  uint32_t rand32() {
    // splitmix64
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return uint32_t((z ^ (z >> 31)) >> 32);
  }
  uint32_t rand_below(uint32_t n) { return uint32_t((uint64_t(rand32()) * n) >> 32); }
  void shuffle(uint32_t* a, uint32_t n) {
    for (uint32_t i = n; i > 1; i--) {
      uint32_t j = rand_below(i);
      uint32_t t = a[i - 1];
      a[i - 1] = a[j];
      a[j] = t;
    }
  }
  void push(uint32_t f) { queue[qtail++ % kMaxThreadsPerThreadgroup] = f; }

  std::string where(const Fiber* f) const {
    const uint32_t* p = f->th.thread_position_in_threadgroup;
    return strf("thread %u (position (%u,%u,%u) in threadgroup (%u,%u,%u))", f->index, p[0], p[1], p[2], tg_pos[0],
                tg_pos[1], tg_pos[2]);
  }
  std::string prefix() const {
    return strf("kernel %s: threadgroup (%u,%u,%u): ", job->k->name, tg_pos[0], tg_pos[1], tg_pos[2]);
  }
};

thread_local Worker* tl_worker = nullptr;

void ensure_stack(Fiber& f) {
  if (f.stack_lo) return;
  size_t len = g_stack_bytes + kStackColourBytes + g_page;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die(strf("cannot allocate a %zu KiB fiber stack: %s", g_stack_bytes / 1024, strerror(errno)));
  if (mprotect(p, g_page, PROT_NONE) != 0) die(strf("mprotect: %s", strerror(errno)));
  f.stack_lo = static_cast<char*>(p) + g_page;
  f.stack_hi = f.stack_lo + g_stack_bytes + kStackColourBytes;
}

inline void switch_to_fiber(Worker* w, Fiber* f) {
#ifdef MSLEMU_UCONTEXT
  swapcontext(&w->sched_uc, &f->uc);
#else
  mslemu_switch(&w->sched_sp, f->sp);
#endif
}
inline void switch_to_sched(Worker* w, Fiber* f) {
#ifdef MSLEMU_UCONTEXT
  swapcontext(&f->uc, &w->sched_uc);
#else
  mslemu_switch(&f->sp, w->sched_sp);
#endif
}

#ifdef MSLEMU_UCONTEXT
void uc_entry(unsigned lo, unsigned hi) {
  mslemu_fiber_main(reinterpret_cast<void*>((uintptr_t(hi) << 32) | lo));
}
#endif

void start_fiber(Fiber& f) {
  ensure_stack(f);
#ifdef MSLEMU_UCONTEXT
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack_lo;
  f.uc.uc_stack.ss_size = g_stack_bytes + kStackColourBytes - (f.index % 1024) * 64;
  f.uc.uc_link = nullptr;
  uintptr_t a = reinterpret_cast<uintptr_t>(&f);
  makecontext(&f.uc, reinterpret_cast<void (*)()>(uc_entry), 2, unsigned(a), unsigned(a >> 32));
#else
  f.sp = init_stack(f.stack_hi - (f.index % 1024) * 64, &f);
#endif
}

// Ends the current threadgroup from inside a fiber. The fiber is never
// resumed; its stack is reused by the next threadgroup.
[[noreturn]] void fiber_fail(Worker* w, Fiber* f, const std::string& msg) {
  w->failed = true;
  w->err = msg;
  f->st = kDone;
  switch_to_sched(w, f);
  die("BUG: a failed fiber was resumed");
}

void complete_simd(Worker* w, SimdGroup& g) {
  uint32_t p = g.seq & 1;
  g.active[p] = g.arrived_mask;
  uint32_t lanes[kSimdWidth];
  uint32_t k = 0;
  for (uint32_t l = 0; l < g.width; l++)
    if (g.arrived_mask >> l & 1u) lanes[k++] = g.base + l;
  w->shuffle(lanes, k);
  for (uint32_t i = 0; i < k; i++) {
    w->fibers[lanes[i]].st = kRunnable;
    w->push(lanes[i]);
  }
  g.arrived = 0;
  g.arrived_mask = 0;
  g.what = g.file = nullptr;
  g.seq++;
}

bool same_site(const char* wa, const char* fa, int la, const char* wb, const char* fb, int lb) {
  return la == lb && (fa == fb || strcmp(fa, fb) == 0) && (wa == wb || strcmp(wa, wb) == 0);
}

// "thread 3" / "threads 0-15"; verb is "wait"/"waits" style: plural first.
std::string who(const char* noun, const std::vector<uint32_t>& ids) {
  return strf("%s%s %s", noun, ids.size() == 1 ? "" : "s", ranges(ids).c_str());
}
const char* verb(const std::vector<uint32_t>& ids, const char* plural, const char* singular) {
  return ids.size() == 1 ? singular : plural;
}

// Describes where each of the given fibers is: "threads 0-15 wait at
// threadgroup_barrier (kernels.metal:12); threads 16-63 have returned".
// noun is "thread" (ids shown as thread indices) or "lane".
std::string describe(Worker* w, const std::vector<uint32_t>& ids, const char* noun) {
  struct Group {
    FState st;
    const char* what;
    const char* file;
    int line;
    std::vector<uint32_t> members;
  };
  bool lanes = strcmp(noun, "lane") == 0;
  std::vector<Group> groups;
  for (uint32_t id : ids) {
    const Fiber& f = w->fibers[id];
    uint32_t shown = lanes ? id % kSimdWidth : id;
    bool found = false;
    for (Group& g : groups) {
      if (g.st == f.st && (f.st == kDone || f.st == kRunnable || same_site(g.what, g.file, g.line, f.what, f.file, f.line))) {
        g.members.push_back(shown);
        found = true;
        break;
      }
    }
    if (!found) groups.push_back(Group{f.st, f.what, f.file, f.line, {shown}});
  }
  std::string s;
  for (const Group& g : groups) {
    if (!s.empty()) s += "; ";
    s += who(noun, g.members) + " ";
    if (g.st == kDone) s += verb(g.members, "have returned", "has returned");
    else if (g.st == kRunnable) s += verb(g.members, "are running", "is running");
    else s += strf("%s at %s (%s:%d)", verb(g.members, "wait", "waits"), g.what, g.file, g.line);
  }
  return s;
}

// --------------------------------------------------------------------------
// Fault reporting: a kernel that faults ends its threadgroup with an error
// instead of killing the driver.

std::string describe_fault(Worker* w) {
  uintptr_t a = reinterpret_cast<uintptr_t>(w->fault_addr);
  Fiber* f = w->fault_fiber;
  std::string who = f ? " in " + w->where(f) : "";
  int sig = w->fault_sig;
  if (sig == SIGFPE) return "arithmetic exception (integer division by zero, or INT_MIN / -1)" + who;
  if (sig == SIGILL || sig == SIGTRAP) return "illegal instruction (reached __builtin_trap or unreachable code)" + who;
  Job* j = w->job;
  for (unsigned i = 0; i < kMaxBindings; i++) {
    if (j->bound_id[i] < 0) continue;
    auto it = g_buffers.find(uint32_t(j->bound_id[i]));
    if (it == g_buffers.end()) continue;
    const Buffer& b = it->second;
    uintptr_t lo = reinterpret_cast<uintptr_t>(b.base), hi = lo + b.size;
    uintptr_t rend = reinterpret_cast<uintptr_t>(b.reserve) + b.reserve_len;
    if (a >= hi && a < rend)
      return strf("out-of-bounds access %zu bytes past the end of the buffer bound at [[buffer(%u)]] (%llu bytes, "
                  "bound at offset %llu)%s",
                  size_t(a - hi), i, (unsigned long long)b.size, (unsigned long long)j->bound_off[i], who.c_str());
    if (a >= lo && a < hi && !b.writable)
      return strf("write to the read-only (mapped file) buffer bound at [[buffer(%u)]]%s", i, who.c_str());
  }
  for (unsigned i = 0; i < kMaxBindings; i++) {
    if (!w->tg_reserve[i]) continue;
    uintptr_t lo = reinterpret_cast<uintptr_t>(w->tg_reserve[i]);
    if (a >= lo && a < lo + w->tg_reserve_len[i])
      return strf("out-of-bounds access outside the %u bytes of threadgroup memory [[threadgroup(%u)]]%s",
                  j->tglen[i], i, who.c_str());
  }
  // Stack overflow: the address lies in a fiber's guard page (exactly, then
  // a little below it, for a frame that skipped the guard).
  for (uintptr_t slack : {uintptr_t(g_page), uintptr_t(16 * g_page)}) {
    for (uint32_t i = 0; i < w->n; i++) {
      uintptr_t lo = reinterpret_cast<uintptr_t>(w->fibers[i].stack_lo);
      if (a < lo && a + slack >= lo)
        return strf("fiber stack overflow in thread %u: each thread has a %zu KiB stack; use less per-thread memory "
                    "or start the device with a larger StackKiB",
                    i, g_stack_bytes / 1024);
    }
  }
  if (a < 65536) return strf("null pointer access (address 0x%llx)%s", (unsigned long long)a, who.c_str());
  return strf("invalid memory access at address 0x%llx (signal %d)%s", (unsigned long long)a, sig, who.c_str());
}

void on_fault(int sig, siginfo_t* si, void*) {
  Worker* w = tl_worker;
  if (w && w->in_fiber) {
    w->fault_sig = sig;
    w->fault_addr = si->si_addr;
    w->fault_fiber = w->cur;
    siglongjmp(w->fault_jmp, 1);
  }
  const char msg[] = "mslemu driver: fatal signal outside kernel code\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(71);
}

void install_altstack(Worker* w) {
  size_t len = 64 * 1024;
  w->altstack = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (w->altstack == MAP_FAILED) die("cannot allocate a signal stack");
  stack_t ss;
  ss.ss_sp = w->altstack;
  ss.ss_size = len;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) die(strf("sigaltstack: %s", strerror(errno)));
}

// --------------------------------------------------------------------------
// Threadgroup memory: one mapping per [[threadgroup(n)]] slot, placed so
// that its end touches a PROT_NONE page (overruns fault).

void prepare_tgmem(Worker* w) {
  Job* j = w->job;
  for (unsigned i = 0; i < kMaxBindings; i++) {
    uint32_t len = j->tglen[i];
    w->launch.tgmem[i] = nullptr;
    w->launch.tglen[i] = len;
    if (len == 0) continue;
    size_t need = (len + g_page - 1) / g_page * g_page + g_page;
    if (w->tg_reserve_len[i] < need) {
      if (w->tg_reserve[i]) munmap(w->tg_reserve[i], w->tg_reserve_len[i]);
      void* p = mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) die("cannot allocate threadgroup memory");
      mprotect(static_cast<char*>(p) + need - g_page, g_page, PROT_NONE);
      w->tg_reserve[i] = static_cast<char*>(p);
      w->tg_reserve_len[i] = need;
    }
    w->launch.tgmem[i] = w->tg_reserve[i] + w->tg_reserve_len[i] - g_page - len;
  }
}

// --------------------------------------------------------------------------
// Running one threadgroup.

bool run_threadgroup(Worker* w, uint64_t tgi) {
  Job* j = w->job;
  w->tg_index = tgi;
  w->tg_pos[0] = uint32_t(tgi % j->tgs[0]);
  w->tg_pos[1] = uint32_t(tgi / j->tgs[0] % j->tgs[1]);
  w->tg_pos[2] = uint32_t(tgi / (uint64_t(j->tgs[0]) * j->tgs[1]));
  for (int d = 0; d < 3; d++) {
    w->tg_size[d] = j->tpt[d];
    if (j->nonuniform) {
      uint32_t start = w->tg_pos[d] * j->tpt[d];
      if (start + j->tpt[d] > j->grid[d]) w->tg_size[d] = j->grid[d] - start;
    }
  }
  const uint32_t sx = w->tg_size[0], sy = w->tg_size[1], sz = w->tg_size[2];
  const uint32_t n = sx * sy * sz;
  w->n = n;
  w->ndone = 0;
  w->failed = false;
  w->qhead = w->qtail = 0;
  w->rng = j->seed ^ (tgi * 0xD1B54A32D192ED03ull) ^ 0x8BB84B93962EACC9ull;
  w->rand32();

  for (unsigned i = 0; i < kMaxBindings; i++)
    if (w->launch.tgmem[i]) memset(w->launch.tgmem[i], 0xff, w->launch.tglen[i]);

  const uint32_t nsg = (n + kSimdWidth - 1) / kSimdWidth;
  for (uint32_t s = 0; s < nsg; s++) {
    SimdGroup& g = w->sg[s];
    g.base = s * kSimdWidth;
    g.width = n - g.base < kSimdWidth ? n - g.base : kSimdWidth;
    g.live = g.width;
    g.arrived = 0;
    g.arrived_mask = 0;
    g.seq = 0;
    g.what = g.file = nullptr;
  }
  for (uint32_t i = 0; i < n; i++) {
    Fiber& f = w->fibers[i];
    f.w = w;
    f.index = i;
    f.st = kRunnable;
    f.what = f.file = nullptr;
    Thread& t = f.th;
    uint32_t p[3] = {i % sx, i / sx % sy, i / (sx * sy)};
    for (int d = 0; d < 3; d++) {
      t.thread_position_in_threadgroup[d] = p[d];
      t.threadgroup_position_in_grid[d] = w->tg_pos[d];
      t.threads_per_threadgroup[d] = w->tg_size[d];
      t.threadgroups_per_grid[d] = j->tgs[d];
      t.thread_position_in_grid[d] = w->tg_pos[d] * j->tpt[d] + p[d];
      t.threads_per_grid[d] = j->nonuniform ? j->grid[d] : j->tgs[d] * j->tpt[d];
      t.dispatch_threads_per_threadgroup[d] = j->tpt[d];
    }
    t.thread_index_in_threadgroup = i;
    t.simdgroup_index_in_threadgroup = i / kSimdWidth;
    t.thread_index_in_simdgroup = i % kSimdWidth;
    t.simdgroups_per_threadgroup = nsg;
    start_fiber(f);
  }

  for (uint32_t i = 0; i < n; i++) w->queue[i] = i;
  w->shuffle(w->queue.data(), n);
  w->qtail = n;

  std::vector<uint32_t> ids;
  for (;;) {
    while (w->qhead != w->qtail) {
      Fiber* f = &w->fibers[w->queue[w->qhead++ % kMaxThreadsPerThreadgroup]];
      w->cur = f;
      w->in_fiber = 1;
      switch_to_fiber(w, f);
      w->in_fiber = 0;
      if (w->failed) return false;
    }
    if (w->ndone == n) return true;

    // Nothing can run. Either every live thread waits at one barrier (a new
    // phase begins), or the threadgroup has diverged.
    for (uint32_t s = 0; s < nsg; s++) {
      SimdGroup& g = w->sg[s];
      if (g.arrived == 0) continue;
      ids.clear();
      for (uint32_t l = 0; l < g.width; l++) ids.push_back(g.base + l);
      w->err = strf("SIMD-group divergence in simdgroup %u: ", s) + describe(w, ids, "lane") +
               "; every lane that has not returned must reach the same SIMD-group function";
      return false;
    }
    const Fiber* first = nullptr;
    bool same = true;
    for (uint32_t i = 0; i < n; i++) {
      const Fiber& f = w->fibers[i];
      if (f.st != kAtBarrier) continue;
      if (!first) first = &f;
      else if (!same_site(first->what, first->file, first->line, f.what, f.file, f.line)) same = false;
    }
    if (!first) die("BUG: scheduler stalled with no thread waiting");
    if (w->ndone > 0 || !same) {
      ids.clear();
      for (uint32_t i = 0; i < n; i++) ids.push_back(i);
      w->err = "barrier divergence: " + describe(w, ids, "thread") +
               "; threadgroup_barrier must be reached by every thread of the threadgroup";
      return false;
    }
    ids.clear();
    for (uint32_t i = 0; i < n; i++) {
      w->fibers[i].st = kRunnable;
      ids.push_back(i);
    }
    w->shuffle(ids.data(), n);
    for (uint32_t i : ids) w->push(i);
  }
}

void run_job(Worker* w, Job* j) {
  tl_worker = w;
  w->job = j;
  memcpy(w->launch.buffers, j->buffers, sizeof j->buffers);
  prepare_tgmem(w);
  // A fault in kernel code (see on_fault) lands here, once per fault; the
  // faulting threadgroup is abandoned and the loop goes on. sigsetjmp with
  // a saved mask costs a system call, so it is done once per job.
  if (sigsetjmp(w->fault_jmp, 1)) {
    w->in_fiber = 0;
    j->fail(w->tg_index, w->prefix() + describe_fault(w));
  }
  for (;;) {
    if (j->abort.load(std::memory_order_relaxed)) return;
    uint64_t tgi = j->next.fetch_add(1, std::memory_order_relaxed);
    if (tgi >= j->total) return;
    if (!run_threadgroup(w, tgi)) j->fail(tgi, w->prefix() + w->err);
  }
}

// --------------------------------------------------------------------------
// Worker pool. The main thread is worker 0; the others wake for dispatches
// with more than one threadgroup.

struct Pool {
  std::vector<Worker*> workers;
  std::mutex mu;
  std::condition_variable wake, done;
  uint64_t generation = 0;
  int running = 0;
  Job* job = nullptr;

  void start(int n) {
    for (int i = 0; i < n; i++) {
      Worker* w = new Worker();
      w->id = i;
      workers.push_back(w);
    }
    install_altstack(workers[0]);
    for (int i = 1; i < n; i++) {
      std::thread([this, i] {
        Worker* w = workers[size_t(i)];
        install_altstack(w);
        uint64_t seen = 0;
        for (;;) {
          Job* j;
          {
            std::unique_lock<std::mutex> l(mu);
            wake.wait(l, [&] { return generation != seen; });
            seen = generation;
            j = job;
          }
          run_job(w, j);
          std::lock_guard<std::mutex> l(mu);
          if (--running == 0) done.notify_one();
        }
      }).detach();
    }
  }

  void run(Job* j) {
    int helpers = 0;
    if (j->total > 1 && workers.size() > 1) {
      helpers = int(workers.size()) - 1;
      std::lock_guard<std::mutex> l(mu);
      job = j;
      running = helpers;
      generation++;
      wake.notify_all();
    }
    run_job(workers[0], j);
    if (helpers) {
      std::unique_lock<std::mutex> l(mu);
      done.wait(l, [&] { return running == 0; });
    }
  }
};

Pool g_pool;

}  // namespace

// Called on a fresh fiber stack.
extern "C" void mslemu_fiber_main(void* arg) {
  Fiber* f = static_cast<Fiber*>(arg);
  Worker* w = f->w;
  w->job->k->launch(&w->launch, &f->th);
  f->st = kDone;
  w->ndone++;
  SimdGroup& g = w->sg[f->index / kSimdWidth];
  g.live--;
  if (g.arrived && g.arrived == g.live) complete_simd(w, g);
  switch_to_sched(w, f);
  die("BUG: a finished fiber was resumed");
}

namespace mslemu {
namespace rt {

void threadgroup_barrier(const char* file, int line) {
  Worker* w = tl_worker;
  Fiber* f = w->cur;
  f->st = kAtBarrier;
  f->what = "threadgroup_barrier";
  f->file = file;
  f->line = line;
  switch_to_sched(w, f);
}

SimdView simd_exchange(const void* data, unsigned size, const char* what, const char* file, int line) {
  Worker* w = tl_worker;
  Fiber* f = w->cur;
  SimdGroup& g = w->sg[f->th.simdgroup_index_in_threadgroup];
  uint32_t lane = f->th.thread_index_in_simdgroup;
  if (g.arrived == 0) {
    g.what = what;
    g.file = file;
    g.line = line;
  } else if (!same_site(g.what, g.file, g.line, what, file, line)) {
    std::vector<uint32_t> waiting;
    for (uint32_t l = 0; l < g.width; l++)
      if (g.arrived_mask >> l & 1u) waiting.push_back(l);
    fiber_fail(w, f,
               strf("SIMD-group divergence in simdgroup %u: lane %u reached %s (%s:%d) while %s %s at %s (%s:%d); "
                    "every lane that has not returned must reach the same SIMD-group function",
                    f->th.simdgroup_index_in_threadgroup, lane, what, file, line, who("lane", waiting).c_str(),
                    verb(waiting, "wait", "waits"), g.what, g.file, g.line));
  }
  if (size > kSlotBytes) die("BUG: simd_exchange value too large");
  if (size) memcpy(g.slots[g.seq & 1][lane], data, size);
  f->parity = uint8_t(g.seq & 1);
  f->st = kAtSimd;
  f->what = what;
  f->file = file;
  f->line = line;
  g.arrived++;
  g.arrived_mask |= 1u << lane;
  if (g.arrived == g.live) complete_simd(w, g);
  switch_to_sched(w, f);
  return SimdView{&g.slots[f->parity][0][0], g.active[f->parity], lane};
}

void kernel_error(const char* file, int line, const char* msg) {
  Worker* w = tl_worker;
  Fiber* f = w->cur;
  fiber_fail(w, f, strf("%s:%d: %s (%s)", file, line, msg, w->where(f).c_str()));
}

}  // namespace rt
}  // namespace mslemu

// --------------------------------------------------------------------------
// Protocol.

namespace {

void read_full(void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = read(0, c, n);
    if (r == 0) _exit(0);  // the Go side closed the pipe: it is gone or done
    if (r < 0) {
      if (errno == EINTR) continue;
      die(strf("read: %s", strerror(errno)));
    }
    c += r;
    n -= size_t(r);
  }
}

int g_reply_fd = 3;

void write_full(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t r = write(g_reply_fd, c, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      _exit(0);  // the Go side is gone
    }
    c += r;
    n -= size_t(r);
  }
}

struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool bad = false;
  template <class T> T get() {
    T v{};
    if (size_t(end - p) < sizeof(T)) {
      bad = true;
      return v;
    }
    memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  const unsigned char* bytes(size_t n) {
    if (size_t(end - p) < n) {
      bad = true;
      return nullptr;
    }
    const unsigned char* r = p;
    p += n;
    return r;
  }
};

void reply(uint8_t status, const std::string& msg) {
  std::string out(5, '\0');
  uint32_t len = uint32_t(1 + msg.size());
  memcpy(&out[0], &len, 4);
  out[4] = char(status);
  out += msg;
  write_full(out.data(), out.size());
}

std::string op_map(Reader& r) {
  uint32_t id = r.get<uint32_t>();
  uint8_t writable = r.get<uint8_t>();
  uint64_t pad = r.get<uint64_t>();
  uint64_t size = r.get<uint64_t>();
  uint16_t plen = r.get<uint16_t>();
  const unsigned char* pb = r.bytes(plen);
  if (r.bad) return "BUG: malformed map request";
  std::string path(reinterpret_cast<const char*>(pb), plen);
  if (g_buffers.count(id)) return strf("BUG: buffer id %u already mapped", id);
  int fd = open(path.c_str(), writable ? O_RDWR : O_RDONLY);
  if (fd < 0) return strf("open %s: %s", path.c_str(), strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return strf("stat %s: %s", path.c_str(), strerror(errno));
  }
  uint64_t flen = uint64_t(st.st_size);
  if (pad + size > flen) {
    close(fd);
    return strf("%s holds %llu bytes, less than the %llu requested", path.c_str(), (unsigned long long)flen,
                (unsigned long long)(pad + size));
  }
  size_t maplen = (flen + g_page - 1) / g_page * g_page;
  if (maplen == 0) maplen = g_page;
  size_t reserve = maplen + g_page;
  void* res = mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) {
    close(fd);
    return strf("cannot reserve %zu bytes of address space: %s", reserve, strerror(errno));
  }
  void* m = flen ? mmap(res, maplen, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) : res;
  close(fd);
  if (m == MAP_FAILED) {
    munmap(res, reserve);
    return strf("mmap %s: %s", path.c_str(), strerror(errno));
  }
  Buffer b;
  b.reserve = static_cast<char*>(res);
  b.reserve_len = reserve;
  b.base = b.reserve + pad;
  b.size = size;
  b.writable = writable != 0;
  g_buffers[id] = b;
  return "";
}

std::string op_unmap(Reader& r) {
  uint32_t id = r.get<uint32_t>();
  if (r.bad) return "BUG: malformed unmap request";
  auto it = g_buffers.find(id);
  if (it == g_buffers.end()) return strf("BUG: unmap of unknown buffer id %u", id);
  munmap(it->second.reserve, it->second.reserve_len);
  g_buffers.erase(it);
  return "";
}

std::string op_dispatch(Reader& r) {
  Job* j = new Job();
  std::unique_ptr<Job> owner(j);
  uint32_t ki = r.get<uint32_t>();
  for (int d = 0; d < 3; d++) j->tgs[d] = r.get<uint32_t>();
  for (int d = 0; d < 3; d++) j->tpt[d] = r.get<uint32_t>();
  for (int d = 0; d < 3; d++) j->grid[d] = r.get<uint32_t>();
  j->seed = r.get<uint64_t>();
  uint8_t nbind = r.get<uint8_t>();
  if (r.bad || ki >= mslemu_kernel_count) return "BUG: malformed dispatch request";
  j->k = &mslemu_kernels[ki];
  const char* kn = j->k->name;
  for (unsigned i = 0; i < kMaxBindings; i++) j->bound_id[i] = -1;
  bool bound[kMaxBindings] = {};
  for (unsigned b = 0; b < nbind; b++) {
    uint8_t idx = r.get<uint8_t>();
    uint8_t kind = r.get<uint8_t>();
    if (r.bad || idx >= kMaxBindings) return "BUG: malformed binding";
    if (kind == 0) {
      uint32_t id = r.get<uint32_t>();
      uint64_t off = r.get<uint64_t>();
      auto it = g_buffers.find(id);
      if (r.bad || it == g_buffers.end()) return strf("BUG: binding of unknown buffer id %u", id);
      if (off > it->second.size)
        return strf("kernel %s: [[buffer(%u)]] offset %llu is past the end of its %llu-byte buffer", kn, idx,
                    (unsigned long long)off, (unsigned long long)it->second.size);
      j->buffers[idx] = it->second.base + off;
      j->bound_id[idx] = id;
      j->bound_off[idx] = off;
    } else {
      uint32_t len = r.get<uint32_t>();
      const unsigned char* p = r.bytes(len);
      if (r.bad) return "BUG: malformed inline bytes";
      // 16-byte aligned copy, as setBytes provides.
      j->inline_bytes[idx].assign(len + 16, 0);
      unsigned char* base = j->inline_bytes[idx].data();
      unsigned char* aligned = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(base) + 15) & ~uintptr_t(15));
      memcpy(aligned, p, len);
      j->buffers[idx] = aligned;
    }
    bound[idx] = true;
  }
  uint8_t ntg = r.get<uint8_t>();
  uint32_t tgtotal = 0;
  for (unsigned t = 0; t < ntg; t++) {
    uint8_t idx = r.get<uint8_t>();
    uint32_t len = r.get<uint32_t>();
    if (r.bad || idx >= kMaxBindings) return "BUG: malformed threadgroup memory length";
    j->tglen[idx] = len;
    tgtotal += len;
  }
  if (r.bad || r.p != r.end) return "BUG: malformed dispatch request";

  uint64_t threads = uint64_t(j->tpt[0]) * j->tpt[1] * j->tpt[2];
  if (threads == 0) return strf("kernel %s: threads per threadgroup has a zero dimension", kn);
  if (threads > kMaxThreadsPerThreadgroup)
    return strf("kernel %s: %llu threads per threadgroup exceeds Metal's limit of %u", kn, (unsigned long long)threads,
                kMaxThreadsPerThreadgroup);
  if (threads > j->k->max_threads)
    return strf("kernel %s: %llu threads per threadgroup exceeds the kernel's max_total_threads_per_threadgroup (%u)",
                kn, (unsigned long long)threads, j->k->max_threads);
  if (tgtotal > kMaxThreadgroupMemory)
    return strf("kernel %s: %u bytes of threadgroup memory exceeds Metal's limit of %u", kn, tgtotal,
                kMaxThreadgroupMemory);
  for (uint32_t p = 0; p < j->k->nparams; p++) {
    const ParamInfo& pi = j->k->params[p];
    if (pi.kind == kParamBuffer && !bound[pi.index])
      return strf("kernel %s: parameter %s [[buffer(%u)]] is not bound", kn, pi.name, pi.index);
    if (pi.kind == kParamThreadgroup && j->tglen[pi.index] == 0)
      return strf("kernel %s: parameter %s [[threadgroup(%u)]] has no threadgroup memory length set", kn, pi.name,
                  pi.index);
  }
  j->nonuniform = j->grid[0] || j->grid[1] || j->grid[2];
  if (j->nonuniform)
    for (int d = 0; d < 3; d++) j->tgs[d] = (j->grid[d] + j->tpt[d] - 1) / j->tpt[d];
  j->total = uint64_t(j->tgs[0]) * j->tgs[1] * j->tgs[2];
  if (j->total == 0) return "";
  g_pool.run(j);
  if (j->abort.load()) return j->err;
  return "";
}

void watch_parent() {
  pid_t parent = getppid();
  std::thread([parent] {
    for (;;) {
      struct timespec ts = {0, 500 * 1000 * 1000};
      nanosleep(&ts, nullptr);
      if (getppid() != parent) _exit(0);
    }
  }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  int workers = int(std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "-stack-kib") == 0) g_stack_bytes = size_t(atol(argv[i + 1])) * 1024;
    else if (strcmp(argv[i], "-workers") == 0) workers = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-reply-fd") == 0) g_reply_fd = atoi(argv[i + 1]);
    else die(strf("unknown flag %s", argv[i]));
  }
  if (workers < 1) workers = 1;
  if (workers > 256) workers = 256;
  g_page = size_t(sysconf(_SC_PAGESIZE));
  g_stack_bytes = (g_stack_bytes + g_page - 1) / g_page * g_page;
  if (g_stack_bytes < 16 * 1024) g_stack_bytes = 16 * 1024;
  signal(SIGPIPE, SIG_IGN);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) sigaction(s, &sa, nullptr);

  g_pool.start(workers);
  watch_parent();

  // Hello: "MSLEMU", version, kernel count, then per kernel its
  // max_total_threads_per_threadgroup and name.
  std::string hello = "MSLEMU";
  auto put32 = [&](uint32_t v) { hello.append(reinterpret_cast<const char*>(&v), 4); };
  put32(kProtocolVersion);
  put32(mslemu_kernel_count);
  for (unsigned i = 0; i < mslemu_kernel_count; i++) {
    put32(mslemu_kernels[i].max_threads);
    uint16_t nl = uint16_t(strlen(mslemu_kernels[i].name));
    hello.append(reinterpret_cast<const char*>(&nl), 2);
    hello += mslemu_kernels[i].name;
  }
  uint32_t hl = uint32_t(hello.size());
  write_full(&hl, 4);
  write_full(hello.data(), hello.size());

  std::vector<unsigned char> buf;
  for (;;) {
    uint32_t len;
    read_full(&len, 4);
    if (len == 0 || len > (64u << 20)) die(strf("BUG: request length %u", len));
    buf.resize(len);
    read_full(buf.data(), len);
    Reader r{buf.data() + 1, buf.data() + len};
    std::string err;
    switch (buf[0]) {
      case 1: err = op_map(r); break;
      case 2: err = op_unmap(r); break;
      case 3: err = op_dispatch(r); break;
      default: err = strf("BUG: unknown request %u", buf[0]);
    }
    reply(err.empty() ? 0 : 1, err);
  }
}
