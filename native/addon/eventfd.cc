// eventfds: cgroup v1 reports memory events (OOM) by signalling an eventfd
// registered in cgroup.event_control. The fd is watched on the loop (uv_poll),
// never polled; the counter is read here so that readiness is consumed and
// a level-triggered poll does not spin.

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addon.h"
#include "errors.h"
#include "watch.h"

namespace xc {
namespace {

// The counter's value (the number of signals since the last read) and resets
// it; 0 if nothing is pending (the fd is non-blocking), -errno on error.
int64_t Drain(int fd) {
  uint64_t count = 0;
  for (;;) {
    ssize_t n = read(fd, &count, sizeof count);
    if (n == static_cast<ssize_t>(sizeof count)) return static_cast<int64_t>(count);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    return n < 0 ? -errno : -EIO;
  }
}

class EventfdWatch : public PollWatch {
 public:
  EventfdWatch(Napi::Env env, int fd, Napi::Function on_event)
      : PollWatch(env, "xcontainer.watchEventfd"), fd_(fd), on_event_(Napi::Persistent(on_event)) {}

 protected:
  void OnEvent(int status, int) override {
    int64_t count = status < 0 ? status : Drain(fd_);
    if (count == 0) return;  // another reader took it first
    Napi::HandleScope scope(env_);
    if (count < 0) {
      // A broken fd will not recover: report once and stop.
      Close();
      Call(on_event_, {ErrnoError(env_, static_cast<int>(-count), "read", "eventfd").Value()});
      return;
    }
    Call(on_event_, {env_.Null(), Napi::Number::New(env_, static_cast<double>(count))});
  }

 private:
  int fd_;
  Napi::FunctionReference on_event_;
};

// A PSI trigger (cgroup v2 memory.pressure opened read-write, "some|full STALL WINDOW" written to
// it): the kernel raises POLLPRI each time the stall passes the threshold within a window. Once the
// cgroup is gone kernfs answers POLLERR|POLLPRI, which libuv passes on as POLLPRI (status 0): the
// caller tells that end apart (the file is gone) and closes the watch. Nothing is read.
class PriorityWatch : public PollWatch {
 public:
  PriorityWatch(Napi::Env env, Napi::Function on_event)
      : PollWatch(env, "xcontainer.watchPriority"), on_event_(Napi::Persistent(on_event)) {}

 protected:
  void OnEvent(int status, int events) override {
    Napi::HandleScope scope(env_);
    if (status < 0) {
      // libuv reports POLLERR as a failed status: the trigger is gone with its cgroup.
      Close();
      Call(on_event_, {ErrnoError(env_, -status, "poll", "pressure trigger").Value()});
      return;
    }
    if ((events & UV_PRIORITIZED) != 0) Call(on_event_, {env_.Null()});
  }

 private:
  Napi::FunctionReference on_event_;
};

}  // namespace

// watchPriority(fd, onEvent(error)) → Watch: onEvent(null) on each POLLPRI, onEvent(error) once at the end.
Napi::Value WatchPriority(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsFunction()) {
    ThrowType(env, "onEvent must be a function");
    return env.Undefined();
  }
  auto* w = new PriorityWatch(env, info[1].As<Napi::Function>());
  return PollWatch::Begin(w, fd, UV_PRIORITIZED);
}

// eventfd() → fd (EFD_CLOEXEC|EFD_NONBLOCK, counter 0)
Napi::Value Eventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    ThrowErrno(env, errno, "eventfd");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// readEventfd(fd) → the pending count (0 if none), resetting it
Napi::Value ReadEventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  int64_t count = Drain(fd);
  if (count < 0) {
    ThrowErrno(env, static_cast<int>(-count), "read", "eventfd");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

// watchEventfd(fd, onEvent(error, count)) → Watch
Napi::Value WatchEventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsFunction()) {
    ThrowType(env, "onEvent must be a function");
    return env.Undefined();
  }
  auto* w = new EventfdWatch(env, fd, info[1].As<Napi::Function>());
  return PollWatch::Begin(w, fd, UV_READABLE);
}

}  // namespace xc
