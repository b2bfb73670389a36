// errno → JS Error, the one place the addon builds its errors.
#pragma once

#include <napi.h>

namespace xc {

// An Error shaped like Node's own system errors: message "ENOENT: no such file
// or directory, open '/x'", code "ENOENT", errno (negative, as Node's fs errors
// carry it, so util.getSystemErrorName(e.errno) works), syscall, path if any.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* path = nullptr);

// The same with the errno's name given: for a syscall whose man page names a
// synonym (flock: EWOULDBLOCK, which is EAGAIN on Linux).
Napi::Error ErrnoError(Napi::Env env, int err, const char* name, const char* syscall,
                       const char* path);

// Throws ErrnoError as a pending JS exception; callers then return.
void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path = nullptr);

// Throws a TypeError naming a bad argument.
void ThrowType(Napi::Env env, const char* message);

// Reads an fd argument: a non-negative int32. Throws a TypeError and returns -1 otherwise.
int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name);

}  // namespace xc
