// pidfds: every process the manager tracks is held by one, never by a bare
// pid (PID reuse has killed bystanders in runc and crun). Exit is an event
// on the loop (the pidfd turns readable), never a poll.

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string.h>

#include "addon.h"
#include "errors.h"
#include "watch.h"

namespace xc {
namespace {

// Our children spawned with exit_signal 0 (CLONE_PARENT by the helper) are
// only seen by waitid with __WALL.
constexpr int kWaitFlags = WEXITED | __WALL;

// waitid(P_PIDFD) without blocking: 1 and *si filled if it exited (reaped),
// 0 if still running, -errno on error.
int Reap(int pidfd, siginfo_t* si) {
  memset(si, 0, sizeof *si);
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd, si, kWaitFlags | WNOHANG) < 0) {
    if (errno != EINTR) return -errno;
  }
  return si->si_pid != 0 ? 1 : 0;
}

Napi::Object ExitStatus(Napi::Env env, const siginfo_t& si) {
  Napi::Object status = Napi::Object::New(env);
  bool exited = si.si_code == CLD_EXITED;
  status.Set("code", exited ? Napi::Number::New(env, si.si_status) : env.Null());
  status.Set("signal", exited ? env.Null() : Napi::Number::New(env, si.si_status));
  return status;
}

class ExitWatch : public PollWatch {
 public:
  ExitWatch(Napi::Env env, int pidfd, Napi::Function on_exit)
      : PollWatch(env, "xcontainer.watchExit"), pidfd_(pidfd), on_exit_(Napi::Persistent(on_exit)) {}

 protected:
  void OnEvent(int, int) override {
    // Readable means exited. WNOHANG anyway: the loop must never block here.
    siginfo_t si;
    int r = Reap(pidfd_, &si);
    if (r == 0) return;  // not exited after all: wait for the next event
    Close();
    Napi::HandleScope scope(env_);
    // r < 0: ECHILD, not our child (or already reaped): no status to give.
    Call(on_exit_, {r > 0 ? ExitStatus(env_, si) : env_.Null()});
  }

 private:
  int pidfd_;
  Napi::FunctionReference on_exit_;
};

}  // namespace

// pidfdOpen(pid) → pidfd (the kernel makes every pidfd O_CLOEXEC)
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = FdArg(info, 0, "pid");
  if (pid < 0) return env.Undefined();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "pidfd_open");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdSendSignal(pidfd, signal)
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = FdArg(info, 0, "pidfd");
  if (pidfd < 0) return env.Undefined();
  int sig = FdArg(info, 1, "signal");
  if (sig < 0) return env.Undefined();
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) {
    ThrowErrno(env, errno, "pidfd_send_signal");
  }
  return env.Undefined();
}

// watchExit(pidfd, onExit) → Watch
Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = FdArg(info, 0, "pidfd");
  if (pidfd < 0) return env.Undefined();
  if (!info[1].IsFunction()) {
    ThrowType(env, "onExit must be a function");
    return env.Undefined();
  }
  auto* w = new ExitWatch(env, pidfd, info[1].As<Napi::Function>());
  return PollWatch::Begin(w, pidfd, UV_READABLE);
}

// tryReap(pidfd) → ExitStatus | null
Napi::Value TryReap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = FdArg(info, 0, "pidfd");
  if (pidfd < 0) return env.Undefined();
  siginfo_t si;
  int r = Reap(pidfd, &si);
  if (r < 0) {
    ThrowErrno(env, -r, "waitid");
    return env.Undefined();
  }
  return r > 0 ? ExitStatus(env, si) : env.Null();
}

}  // namespace xc
