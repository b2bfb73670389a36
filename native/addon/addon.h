// The exported functions, one per entry of native/addon-types.ts.
#pragma once

#include <napi.h>

namespace xc {

// spawn.cc
Napi::Value SealHelper(const Napi::CallbackInfo& info);
Napi::Value SpawnHelper(const Napi::CallbackInfo& info);
// socket.cc
Napi::Value Socketpair(const Napi::CallbackInfo& info);
Napi::Value Send(const Napi::CallbackInfo& info);
Napi::Value Receive(const Napi::CallbackInfo& info);
// process.cc
Napi::Value PidfdOpen(const Napi::CallbackInfo& info);
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info);
Napi::Value WatchExit(const Napi::CallbackInfo& info);
Napi::Value TryReap(const Napi::CallbackInfo& info);
// fs.cc
Napi::Value Mkfifo(const Napi::CallbackInfo& info);
Napi::Value Flock(const Napi::CallbackInfo& info);
Napi::Value OpenInRoot(const Napi::CallbackInfo& info);
// tty.cc
Napi::Value ConnectUnix(const Napi::CallbackInfo& info);
Napi::Value SetWinsize(const Napi::CallbackInfo& info);
Napi::Value ClearOpost(const Napi::CallbackInfo& info);
// bpf.cc
Napi::Value BpfLoadDeviceProgram(const Napi::CallbackInfo& info);
Napi::Value BpfProgramId(const Napi::CallbackInfo& info);
Napi::Value BpfQueryDevicePrograms(const Napi::CallbackInfo& info);
Napi::Value BpfProgramFdById(const Napi::CallbackInfo& info);
Napi::Value BpfAttachDeviceProgram(const Napi::CallbackInfo& info);
Napi::Value BpfDetachDeviceProgram(const Napi::CallbackInfo& info);
// eventfd.cc
Napi::Value Eventfd(const Napi::CallbackInfo& info);
Napi::Value ReadEventfd(const Napi::CallbackInfo& info);
Napi::Value WatchEventfd(const Napi::CallbackInfo& info);
Napi::Value WatchPriority(const Napi::CallbackInfo& info);
// seccomp-notify.cc
Napi::Value SeccompNotifyWatch(const Napi::CallbackInfo& info);
Napi::Value SeccompNotifyRespond(const Napi::CallbackInfo& info);
Napi::Value SeccompNotifyIdValid(const Napi::CallbackInfo& info);

}  // namespace xc
