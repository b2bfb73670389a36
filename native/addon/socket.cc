// socketpair, send and receive: the manager's side of the seqpacket socket it
// shares with the init helper (protocol: native/init/protocol.h). One
// datagram is one message; fds travel as SCM_RIGHTS.

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string.h>

#include <memory>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "protocol.h"
#include "watch.h"

namespace xc {
namespace {

// The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD).
constexpr size_t kMaxFds = 253;

// Watches a socket; delivers each datagram, then the end.
class MessageWatch : public PollWatch {
 public:
  MessageWatch(Napi::Env env, int fd, Napi::Function on_message, Napi::Function on_end)
      : PollWatch(env, "xcontainer.receive"),
        fd_(fd),
        on_message_(Napi::Persistent(on_message)),
        on_end_(Napi::Persistent(on_end)) {}

 protected:
  void OnEvent(int status, int events) override;

 private:
  // Closes the watch, then calls onEnd(error or null).
  void End(int err);

  int fd_;
  Napi::FunctionReference on_message_;
  Napi::FunctionReference on_end_;
};

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

void MessageWatch::OnEvent(int status, int) {
  if (status < 0) return End(-status);
  // Shared by every watch of this thread: one datagram at a time.
  // Not value-initialised: only the pages a datagram fills become resident.
  static thread_local std::unique_ptr<char[]> buf(new char[XC_MAX_MSG]);
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];

  // The poll is level-triggered: a bounded batch, then let the loop breathe.
  for (int i = 0; i < 64 && !closing(); i++) {
    struct iovec iov = {buf.get(), XC_MAX_MSG};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    // MSG_DONTWAIT: the socket may be blocking (we leave its flags alone).
    ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return End(errno);
    }

    std::vector<int> fds;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < count; k++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
    }
    // Zero bytes is the peer's close (every protocol message has a header).
    if (n == 0) {
      CloseAll(fds);
      return End(0);
    }
    // A cut datagram or lost fds would be a corrupt message: stop here.
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
      CloseAll(fds);
      return End(EMSGSIZE);
    }

    Napi::HandleScope scope(env_);
    Napi::Buffer<char> data = Napi::Buffer<char>::Copy(env_, buf.get(), static_cast<size_t>(n));
    Napi::Array js_fds = Napi::Array::New(env_, fds.size());
    for (size_t k = 0; k < fds.size(); k++) js_fds.Set(k, Napi::Number::New(env_, fds[k]));
    // After a throw the rest waits for the next poll event.
    if (!Call(on_message_, {data, js_fds})) return;
  }
}

void MessageWatch::End(int err) {
  Close();
  Napi::HandleScope scope(env_);
  Napi::Value error = err != 0 ? ErrnoError(env_, err, "recvmsg").Value() : env_.Null();
  Call(on_end_, {error});
}

// A unix datagram longer than the sender's SO_SNDBUF (default ~208 KiB) fails
// with EMSGSIZE: make room for the protocol's largest message on both ends.
// The kernel doubles the value asked for, capped by net.core.wmem_max, which
// SO_SNDBUFFORCE (root) may pass. If both fail, a large send says EMSGSIZE.
void FitLargestMessage(int fd) {
  int want = XC_MAX_MSG;
  int have = 0;
  socklen_t len = sizeof have;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &len) == 0 && have < 2 * want) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want);
  }
}

}  // namespace

// socketpair() → [fd, fd]
Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    ThrowErrno(env, errno, "socketpair");
    return env.Undefined();
  }
  FitLargestMessage(sv[0]);
  FitLargestMessage(sv[1]);
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, sv[0]));
  result.Set(1u, Napi::Number::New(env, sv[1]));
  return result;
}

// send(fd, data, fds?)
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "data must be a Uint8Array");
    return env.Undefined();
  }
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();

  std::vector<int> fds;
  if (!info[2].IsUndefined()) {
    if (!info[2].IsArray()) {
      ThrowType(env, "fds must be an array of file descriptors");
      return env.Undefined();
    }
    Napi::Array arr = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= 0x7fffffff && d == static_cast<int>(d))) {
        ThrowType(env, "fds must be an array of file descriptors");
        return env.Undefined();
      }
      fds.push_back(static_cast<int>(d));
    }
  }

  struct iovec iov = {data.Data(), data.ByteLength()};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  // MSG_NOSIGNAL: a closed peer is an EPIPE error, not a SIGPIPE.
  while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
    if (errno == EINTR) continue;
    ThrowErrno(env, errno, "sendmsg");
    return env.Undefined();
  }
  return env.Undefined();
}

// receive(fd, onMessage, onEnd) → Watch
Napi::Value Receive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsFunction() || !info[2].IsFunction()) {
    ThrowType(env, "onMessage and onEnd must be functions");
    return env.Undefined();
  }
  auto* w = new MessageWatch(env, fd, info[1].As<Napi::Function>(), info[2].As<Napi::Function>());
  return PollWatch::Begin(w, fd, UV_READABLE | UV_DISCONNECT);
}

}  // namespace xc
