#include "errors.h"

#include <string.h>

#include <string>

namespace xc {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* path) {
  // strerrorname_np (glibc 2.32) gives "ENOENT"; NULL for a number it does not know.
  return ErrnoError(env, err, strerrorname_np(err), syscall, path);
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* name, const char* syscall,
                       const char* path) {
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  std::string message = code + ": " + strerror(err) + ", " + syscall;
  if (path != nullptr) message += std::string(" '") + path + "'";

  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (path != nullptr) error.Set("path", Napi::String::New(env, path));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path) {
  ErrnoError(env, err, syscall, path).ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= 0x7fffffff && d == static_cast<int>(d)) return static_cast<int>(d);
  }
  std::string message = std::string(name) + " must be a file descriptor (a non-negative integer)";
  Napi::TypeError::New(info.Env(), message).ThrowAsJavaScriptException();
  return -1;
}

}  // namespace xc
