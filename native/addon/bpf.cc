// bpf(2) for cgroup v2 device filters: load a BPF_PROG_TYPE_CGROUP_DEVICE
// program generated in TypeScript (config/device-bpf.ts), find the programs
// attached to a cgroup, attach one (BPF_F_ALLOW_MULTI, optionally replacing
// another atomically with BPF_F_REPLACE), detach one. Which to replace is
// decided in TypeScript (effects/device-filter.ts).

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace xc {
namespace {

long Bpf(int cmd, union bpf_attr* attr) {
  long r;
  do {
    r = syscall(SYS_bpf, cmd, attr, sizeof *attr);
  } while (r < 0 && errno == EINTR);
  return r;
}

// The cgroup directory as the fd bpf(2) targets; -1 with a JS exception pending.
int OpenCgroup(Napi::Env env, const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, errno, "open", path.c_str());
  return fd;
}

bool StringArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (!info[i].IsString()) return false;
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

}  // namespace

// bpfLoadDeviceProgram(insns: Uint8Array, license: string) → fd
Napi::Value BpfLoadDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string license;
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      !StringArg(info, 1, &license)) {
    ThrowType(env, "bpfLoadDeviceProgram(insns: Uint8Array, license: string)");
    return env.Undefined();
  }
  Napi::Uint8Array insns = info[0].As<Napi::Uint8Array>();
  if (insns.ByteLength() == 0 || insns.ByteLength() % sizeof(struct bpf_insn) != 0) {
    ThrowType(env, "insns must be a whole number of 8-byte instructions");
    return env.Undefined();
  }
  // The verifier's log: only read when the load fails, where it says why.
  std::vector<char> log(64 * 1024, '\0');
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uintptr_t>(insns.Data());
  attr.insn_cnt = static_cast<uint32_t>(insns.ByteLength() / sizeof(struct bpf_insn));
  attr.license = reinterpret_cast<uintptr_t>(license.c_str());
  attr.log_buf = reinterpret_cast<uintptr_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0 && errno == ENOSPC) {
    // A log too small for the verifier's words fails the load itself: load again without one.
    attr.log_buf = 0;
    attr.log_size = 0;
    attr.log_level = 0;
    fd = Bpf(BPF_PROG_LOAD, &attr);
  }
  if (fd < 0) {
    int err = errno;
    Napi::Error e = ErrnoError(env, err, "bpf(BPF_PROG_LOAD)");
    e.Set("log", Napi::String::New(env, log.data()));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// bpfProgramId(fd) → the kernel's id of the loaded program
Napi::Value BpfProgramId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) return env.Undefined();
  struct bpf_prog_info pinfo;
  memset(&pinfo, 0, sizeof pinfo);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.info.bpf_fd = static_cast<uint32_t>(fd);
  attr.info.info_len = sizeof pinfo;
  attr.info.info = reinterpret_cast<uintptr_t>(&pinfo);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) {
    ThrowErrno(env, errno, "bpf(BPF_OBJ_GET_INFO_BY_FD)");
    return env.Undefined();
  }
  return Napi::Number::New(env, pinfo.id);
}

// bpfQueryDevicePrograms(cgroupDir) → ids of the device programs attached to it (not inherited ones)
Napi::Value BpfQueryDevicePrograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) {
    ThrowType(env, "bpfQueryDevicePrograms(cgroupDir: string)");
    return env.Undefined();
  }
  int dir = OpenCgroup(env, path);
  if (dir < 0) return env.Undefined();
  // 64 is the kernel's limit of programs per attach point; ENOSPC still reports the count.
  std::vector<uint32_t> ids(64);
  for (int attempt = 0; attempt < 4; attempt++) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = static_cast<uint32_t>(dir);
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uintptr_t>(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (Bpf(BPF_PROG_QUERY, &attr) == 0) {
      close(dir);
      Napi::Array out = Napi::Array::New(env, attr.query.prog_cnt);
      for (uint32_t i = 0; i < attr.query.prog_cnt; i++) out.Set(i, Napi::Number::New(env, ids[i]));
      return out;
    }
    if (errno != ENOSPC) break;
    ids.resize(attr.query.prog_cnt);
  }
  int err = errno;
  close(dir);
  ThrowErrno(env, err, "bpf(BPF_PROG_QUERY)", path.c_str());
  return env.Undefined();
}

// bpfProgramFdById(id) → fd
Napi::Value BpfProgramFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    ThrowType(env, "bpfProgramFdById(id: number)");
    return env.Undefined();
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = info[0].As<Napi::Number>().Uint32Value();
  long fd = Bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) {
    ThrowErrno(env, errno, "bpf(BPF_PROG_GET_FD_BY_ID)");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// BPF_PROG_ATTACH or BPF_PROG_DETACH of a device program on the cgroup directory `path`
// (flags and replace_bpf_fd matter to attach only); throws on failure.
static void DeviceProgramCall(Napi::Env env, int cmd, const char* what, const std::string& path, int prog, uint32_t flags, int replace) {
  int dir = OpenCgroup(env, path);
  if (dir < 0) return;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(dir);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog);
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = flags;
  if (replace >= 0) attr.replace_bpf_fd = static_cast<uint32_t>(replace);
  long r = Bpf(cmd, &attr);
  int err = errno;
  close(dir);
  if (r < 0) ThrowErrno(env, err, what, path.c_str());
}

// bpfAttachDeviceProgram(cgroupDir, progFd, replaceFd?) — BPF_F_ALLOW_MULTI, and BPF_F_REPLACE with replaceFd
Napi::Value BpfAttachDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) {
    ThrowType(env, "bpfAttachDeviceProgram(cgroupDir: string, progFd: number, replaceFd?: number)");
    return env.Undefined();
  }
  int prog = FdArg(info, 1, "progFd");
  if (prog < 0) return env.Undefined();
  int replace = -1;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    replace = FdArg(info, 2, "replaceFd");
    if (replace < 0) return env.Undefined();
  }
  uint32_t flags = BPF_F_ALLOW_MULTI | (replace >= 0 ? BPF_F_REPLACE : 0);
  DeviceProgramCall(env, BPF_PROG_ATTACH, "bpf(BPF_PROG_ATTACH)", path, prog, flags, replace);
  return env.Undefined();
}

// bpfDetachDeviceProgram(cgroupDir, progFd)
Napi::Value BpfDetachDeviceProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, &path)) {
    ThrowType(env, "bpfDetachDeviceProgram(cgroupDir: string, progFd: number)");
    return env.Undefined();
  }
  int prog = FdArg(info, 1, "progFd");
  if (prog < 0) return env.Undefined();
  DeviceProgramCall(env, BPF_PROG_DETACH, "bpf(BPF_PROG_DETACH)", path, prog, 0, -1);
  return env.Undefined();
}

}  // namespace xc
