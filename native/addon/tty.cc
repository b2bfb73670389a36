// Terminals: the console socket a caller gives (runc's --console-socket, a
// unix stream socket the pty master is sent to) and window sizes.

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "addon.h"
#include "errors.h"

namespace xc {

Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowType(env, "path must be a string");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ThrowErrno(env, ENAMETOOLONG, "connect", path.c_str());
    return env.Undefined();
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket", path.c_str());
    return env.Undefined();
  }
  // connectUnix(path, timeoutMs): SO_SNDTIMEO bounds both the connect (a unix listener whose backlog
  // is full makes it wait) and every send on the socket; on expiry they fail with EAGAIN.
  if (info.Length() > 1 && info[1].IsNumber()) {
    int64_t ms = info[1].As<Napi::Number>().Int64Value();
    if (ms > 0) {
      struct timeval tv = {static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
      if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
        int err = errno;
        close(fd);
        ThrowErrno(env, err, "setsockopt", "SO_SNDTIMEO");
        return env.Undefined();
      }
    }
  }
  while (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0) {
    if (errno == EINTR) continue;
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "connect", path.c_str());
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value SetWinsize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  if (!info[1].IsNumber() || !info[2].IsNumber()) {
    ThrowType(env, "rows and columns must be numbers");
    return env.Undefined();
  }
  struct winsize ws = {};
  ws.ws_row = static_cast<unsigned short>(info[1].As<Napi::Number>().Uint32Value());
  ws.ws_col = static_cast<unsigned short>(info[2].As<Napi::Number>().Uint32Value());
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) ThrowErrno(env, errno, "ioctl", "TIOCSWINSZ");
  return env.Undefined();
}

// Output post-processing off on a terminal (c_oflag &= ~OPOST), the one flag in which libuv's raw
// mode differs from cfmakeraw (it keeps ONLCR): the container's pty already turned \n into \r\n.
Napi::Value ClearOpost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  struct termios t;
  if (tcgetattr(fd, &t) < 0) {
    ThrowErrno(env, errno, "tcgetattr");
    return env.Undefined();
  }
  t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  if (tcsetattr(fd, TCSANOW, &t) < 0) ThrowErrno(env, errno, "tcsetattr");
  return env.Undefined();
}

}  // namespace xc
