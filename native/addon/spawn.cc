// sealHelper and spawnHelper: how the manager starts the init helper.
//
// The helper runs from a sealed memfd so that nothing a container does can
// rewrite the binary we exec into the next container (CVE-2019-5736). It is
// spawned with clone(CLONE_VM|CLONE_VFORK): no copy of Node's page tables,
// which a fork would pay for in proportion to the heap (DESIGN.md §3).

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace xc {
namespace {

constexpr size_t kStackSize = 64 * 1024;
// Preserved fds (runc's --preserve-fds, LISTEN_FDS) the helper gets at 4, 5, …
constexpr int kMaxExtra = 128;

// Closes an fd at scope exit.
struct ScopedFd {
  int fd;
  explicit ScopedFd(int f) : fd(f) {}
  ~ScopedFd() {
    if (fd >= 0) close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

// Everything the child needs, prepared by the parent: the child of a CLONE_VM
// clone shares our heap and may only make async-signal-safe calls (no malloc).
// The child reports a failure in `err`/`syscall`: CLONE_VFORK suspends us
// until it has exec'd or exited, so we read them only after it is done.
struct ChildArgs {
  int helper_fd;
  int src[4 + kMaxExtra];  // sources of the child's fds 0, 1, 2 (stdio), 3 (socket), 4… (preserved)
  int nsrc;
  char** argv;
  char** envp;
  volatile int err;
  const char* volatile syscall;
};

[[noreturn]] void ChildFail(ChildArgs* a, const char* syscall) {
  a->err = errno;
  a->syscall = syscall;
  _exit(127);
}

int ChildMain(void* arg) {
  ChildArgs* a = static_cast<ChildArgs*>(arg);

  // Our handlers are a private copy (no CLONE_SIGHAND): reset them all, as
  // posix_spawn and libuv's uv__process_child_init do. Node ignores SIGPIPE;
  // that must not leak into the helper. SIGKILL/SIGSTOP and glibc's internal
  // signals refuse with EINVAL, which is fine.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, nullptr);
  // The parent blocked everything around clone(); the helper starts unblocked.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // A source may itself be one of 0..3 (Node's own stdio, say): first move
  // every source above 3, then dup2 onto 0..3. dup2 clears FD_CLOEXEC on the
  // target; the temporaries stay CLOEXEC and vanish at exec.
  int tmp[4 + kMaxExtra];
  for (int i = 0; i < a->nsrc; i++) {
    tmp[i] = fcntl(a->src[i], F_DUPFD_CLOEXEC, a->nsrc);
    if (tmp[i] < 0) ChildFail(a, "fcntl");
  }
  for (int i = 0; i < a->nsrc; i++) {
    if (dup2(tmp[i], i) < 0) ChildFail(a, "dup2");
  }
  // A stdout pipe of Node is O_NONBLOCK; the helper expects blocking stdio
  // (libuv clears it the same way; the flag is on the shared file description).
  for (int i = 0; i < 3; i++) {
    int fl = fcntl(i, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK) != 0) fcntl(i, F_SETFL, fl & ~O_NONBLOCK);
  }
  // Node keeps fds it inherited without FD_CLOEXEC: none may reach the helper,
  // let alone a container (CVE-2024-21626). Our memfd is CLOEXEC already and
  // stays open until execveat has read it.
  if (syscall(SYS_close_range, static_cast<unsigned>(a->nsrc), ~0u, CLOSE_RANGE_CLOEXEC) < 0) ChildFail(a, "close_range");

  syscall(SYS_execveat, a->helper_fd, "", a->argv, a->envp, AT_EMPTY_PATH);
  ChildFail(a, "execveat");
}

// Copies a JS string array into storage + a NULL-terminated char* array.
bool StringArray(Napi::Env env, Napi::Value v, const char* name, std::vector<std::string>* storage,
                 std::vector<char*>* ptrs) {
  if (!v.IsArray()) {
    ThrowType(env, (std::string(name) + " must be an array of strings").c_str());
    return false;
  }
  Napi::Array arr = v.As<Napi::Array>();
  uint32_t n = arr.Length();
  storage->reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value s = arr.Get(i);
    if (!s.IsString()) {
      ThrowType(env, (std::string(name) + " must be an array of strings").c_str());
      return false;
    }
    storage->push_back(s.As<Napi::String>().Utf8Value());
  }
  for (std::string& s : *storage) ptrs->push_back(s.data());
  ptrs->push_back(nullptr);
  return true;
}

int OptFd(Napi::Env env, Napi::Value v, const char* name) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= 0x7fffffff && d == static_cast<int>(d)) return static_cast<int>(d);
  }
  ThrowType(env, (std::string(name) + " must be a file descriptor").c_str());
  return -1;
}

}  // namespace

// sealHelper(path): memfd holding a sealed copy of the file at path.
Napi::Value SealHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "path must be a string");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();

  ScopedFd src(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (src.fd < 0) {
    ThrowErrno(env, errno, "open", path.c_str());
    return env.Undefined();
  }
  ScopedFd mem(memfd_create("xcontainer-init", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (mem.fd < 0) {
    ThrowErrno(env, errno, "memfd_create");
    return env.Undefined();
  }
  for (;;) {
    ssize_t n = sendfile(mem.fd, src.fd, nullptr, 1 << 20);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "sendfile", path.c_str());
      return env.Undefined();
    }
  }
  // Read and execute only; the seals make it so for good.
  if (fchmod(mem.fd, 0555) < 0) {
    ThrowErrno(env, errno, "fchmod");
    return env.Undefined();
  }
  if (fcntl(mem.fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
    ThrowErrno(env, errno, "fcntl(F_ADD_SEALS)");
    return env.Undefined();
  }
  return Napi::Number::New(env, mem.release());
}

// spawnHelper({helperFd, argv, env, stdio, socketFd, extraFds?}) → {pid, pidfd}
Napi::Value SpawnHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    ThrowType(env, "options must be an object");
    return env.Undefined();
  }
  Napi::Object opts = info[0].As<Napi::Object>();

  ChildArgs args = {};
  args.helper_fd = OptFd(env, opts.Get("helperFd"), "helperFd");
  if (args.helper_fd < 0) return env.Undefined();
  Napi::Value stdio = opts.Get("stdio");
  if (!stdio.IsArray() || stdio.As<Napi::Array>().Length() != 3) {
    ThrowType(env, "stdio must be an array of 3 file descriptors");
    return env.Undefined();
  }
  for (uint32_t i = 0; i < 3; i++) {
    args.src[i] = OptFd(env, stdio.As<Napi::Array>().Get(i), "stdio[i]");
    if (args.src[i] < 0) return env.Undefined();
  }
  args.src[3] = OptFd(env, opts.Get("socketFd"), "socketFd");
  if (args.src[3] < 0) return env.Undefined();
  args.nsrc = 4;
  Napi::Value extra = opts.Get("extraFds");
  if (!extra.IsUndefined()) {
    if (!extra.IsArray() || extra.As<Napi::Array>().Length() > kMaxExtra) {
      ThrowType(env, "extraFds must be an array of at most 128 file descriptors");
      return env.Undefined();
    }
    for (uint32_t i = 0; i < extra.As<Napi::Array>().Length(); i++) {
      args.src[args.nsrc] = OptFd(env, extra.As<Napi::Array>().Get(i), "extraFds[i]");
      if (args.src[args.nsrc++] < 0) return env.Undefined();
    }
  }

  std::vector<std::string> argv_s, env_s;
  std::vector<char*> argv, envp;
  if (!StringArray(env, opts.Get("argv"), "argv", &argv_s, &argv)) return env.Undefined();
  if (!StringArray(env, opts.Get("env"), "env", &env_s, &envp)) return env.Undefined();
  args.argv = argv.data();
  args.envp = envp.data();

  void* stack = malloc(kStackSize);
  if (stack == nullptr) {
    ThrowErrno(env, ENOMEM, "malloc");
    return env.Undefined();
  }
  // The stack grows down: pass its top, 16-byte aligned.
  char* stack_top = static_cast<char*>(stack) + kStackSize;

  // Block every signal around clone(): a signal delivered to the child before
  // it reset its dispositions would run Node's handler on our shared memory.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  pid_t pid = clone(ChildMain, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args,
                    &pidfd /* parent_tid: where CLONE_PIDFD stores the pidfd */);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  free(stack);

  if (pid < 0) {
    ThrowErrno(env, clone_errno, "clone");
    return env.Undefined();
  }
  if (args.err != 0) {
    // The child failed before exec and has exited: reap it, report its errno.
    siginfo_t si;
    while (waitid(P_PIDFD, pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR) {
    }
    close(pidfd);
    ThrowErrno(env, args.err, args.syscall);
    return env.Undefined();
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("pidfd", Napi::Number::New(env, pidfd));
  return result;
}

}  // namespace xc
