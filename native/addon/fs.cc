// Files: the exec fifo, state-directory locks, and opening a path of a
// container's rootfs without following a symlink out of it.

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace xc {
namespace {

// flock(2) may block for as long as another process holds the lock: it runs
// on the libuv thread pool, and settles a promise on the loop.
class FlockWorker : public Napi::AsyncWorker {
 public:
  FlockWorker(Napi::Env env, int fd, int op)
      : Napi::AsyncWorker(env, "xcontainer.flock"), fd_(fd), op_(op), deferred_(env) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    while (flock(fd_, op_) < 0) {
      if (errno != EINTR) {
        err_ = errno;
        return;
      }
    }
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (err_ != 0) {
      // flock(2) documents a held lock under LOCK_NB as EWOULDBLOCK.
      const char* name = err_ == EWOULDBLOCK ? "EWOULDBLOCK" : strerrorname_np(err_);
      deferred_.Reject(ErrnoError(Env(), err_, name, "flock", nullptr).Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

 private:
  int fd_;
  int op_;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

// mkfifo(path, mode)
Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) {
    ThrowType(env, "mkfifo(path: string, mode: number)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  if (mkfifo(path.c_str(), mode) < 0) ThrowErrno(env, errno, "mkfifo", path.c_str());
  return env.Undefined();
}

// flock(fd, op) → Promise<void>
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsNumber()) {
    ThrowType(env, "op must be a number");
    return env.Undefined();
  }
  auto* worker = new FlockWorker(env, fd, info[1].As<Napi::Number>().Int32Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself once settled
  return promise;
}

// openInRoot(root, path, flags) → fd
Napi::Value OpenInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    ThrowType(env, "openInRoot(root: string, path: string, flags: number)");
    return env.Undefined();
  }
  std::string root = info[0].As<Napi::String>().Utf8Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  int flags = info[2].As<Napi::Number>().Int32Value();

  int rootfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    ThrowErrno(env, errno, "open", root.c_str());
    return env.Undefined();
  }
  // RESOLVE_IN_ROOT: "..", absolute paths and symlinks all stay under root, as
  // if it were "/" (CVE-2021-30465). No magic links: /proc/self/fd/N could
  // otherwise lead anywhere.
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(static_cast<unsigned>(flags)) | O_CLOEXEC;
  // openat2 refuses a mode without O_CREAT/O_TMPFILE.
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) how.mode = 0644;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = syscall(SYS_openat2, rootfd, path.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  int err = errno;
  close(rootfd);
  if (fd < 0) {
    std::string full = root + "/" + path;
    ThrowErrno(env, err, "openat2", full.c_str());
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

}  // namespace xc
