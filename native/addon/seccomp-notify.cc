// Seccomp user notification, the supervisor's side: a listener fd (from the
// init's SECCOMP_FILTER_FLAG_NEW_LISTENER) watched on the event loop, and the
// three ioctls to receive, answer and re-check a notification. What to answer
// is the library's decision (effects/seccomp-notify.ts).

#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <linux/seccomp.h>

#include <string.h>

#include "addon.h"
#include "errors.h"
#include "watch.h"

namespace xc {
namespace {

class NotifyWatch : public PollWatch {
 public:
  NotifyWatch(Napi::Env env, int fd, Napi::Function on_notif, Napi::Function on_end)
      : PollWatch(env, "xcontainer.seccompNotify"),
        fd_(fd),
        on_notif_(Napi::Persistent(on_notif)),
        on_end_(Napi::Persistent(on_end)) {}

 protected:
  void OnEvent(int status, int events) override;

 private:
  void End(int err);

  int fd_;
  Napi::FunctionReference on_notif_;
  Napi::FunctionReference on_end_;
};

void NotifyWatch::OnEvent(int status, int) {
  if (status < 0) return End(-status);
  // libuv turns POLLHUP (no task uses the filter any more) into "readable",
  // and NOTIF_RECV with nothing pending blocks: ask poll() what it really is.
  for (int i = 0; i < 64 && !closing(); i++) {
    struct pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, 0) < 0) {
      if (errno == EINTR) continue;
      return End(errno);
    }
    if ((p.revents & POLLIN) == 0) {
      if ((p.revents & (POLLHUP | POLLERR)) != 0) return End(0);
      return;
    }
    struct seccomp_notif n;
    memset(&n, 0, sizeof n);  // the kernel refuses a non-zeroed buffer
    if (ioctl(fd_, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
      // ENOENT: the task was killed between poll and recv.
      if (errno == EINTR || errno == ENOENT) continue;
      return End(errno);
    }
    Napi::HandleScope scope(env_);
    Napi::Object o = Napi::Object::New(env_);
    o.Set("id", Napi::BigInt::New(env_, static_cast<uint64_t>(n.id)));
    o.Set("pid", Napi::Number::New(env_, n.pid));
    o.Set("arch", Napi::Number::New(env_, n.data.arch));
    o.Set("nr", Napi::Number::New(env_, n.data.nr));
    o.Set("instructionPointer", Napi::BigInt::New(env_, static_cast<uint64_t>(n.data.instruction_pointer)));
    Napi::Array args = Napi::Array::New(env_, 6);
    for (uint32_t k = 0; k < 6; k++) args.Set(k, Napi::BigInt::New(env_, static_cast<uint64_t>(n.data.args[k])));
    o.Set("args", args);
    if (!Call(on_notif_, {o})) return;
  }
}

void NotifyWatch::End(int err) {
  Close();
  Napi::HandleScope scope(env_);
  Napi::Value error = err != 0 ? ErrnoError(env_, err, "SECCOMP_IOCTL_NOTIF_RECV").Value() : env_.Null();
  Call(on_end_, {error});
}

uint64_t BigArg(const Napi::CallbackInfo& info, size_t i) {
  bool lossless = true;
  return info[i].IsBigInt() ? info[i].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
}

}  // namespace

// seccompNotifyWatch(fd, onNotification, onEnd) → Watch
Napi::Value SeccompNotifyWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsFunction() || !info[2].IsFunction()) {
    ThrowType(env, "onNotification and onEnd must be functions");
    return env.Undefined();
  }
  auto* w = new NotifyWatch(env, fd, info[1].As<Napi::Function>(), info[2].As<Napi::Function>());
  return PollWatch::Begin(w, fd, UV_READABLE);
}

// seccompNotifyRespond(fd, id, error, val, flags)
Napi::Value SeccompNotifyRespond(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsBigInt() || !info[2].IsNumber() || !info[3].IsBigInt() || !info[4].IsNumber()) {
    ThrowType(env, "id and val must be bigints, error and flags numbers");
    return env.Undefined();
  }
  struct seccomp_notif_resp r;
  memset(&r, 0, sizeof r);
  r.id = BigArg(info, 1);
  r.error = info[2].As<Napi::Number>().Int32Value();
  r.val = static_cast<int64_t>(BigArg(info, 3));
  r.flags = info[4].As<Napi::Number>().Uint32Value();
  // ENOENT: the task is gone (killed, or its syscall interrupted).
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0) ThrowErrno(env, errno, "SECCOMP_IOCTL_NOTIF_SEND");
  return env.Undefined();
}

// seccompNotifyIdValid(fd, id) → boolean: the task still waits on this notification.
Napi::Value SeccompNotifyIdValid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsBigInt()) {
    ThrowType(env, "id must be a bigint");
    return env.Undefined();
  }
  uint64_t id = BigArg(info, 1);
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "SECCOMP_IOCTL_NOTIF_ID_VALID");
  return env.Undefined();
}

}  // namespace xc
