// Module init: the thin syscall wrappers of native/addon-types.ts. The addon
// decides nothing; the TypeScript library does.

#include "addon.h"

#include "watch.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  xc::Watch::Init(env);
  exports.Set("sealHelper", Napi::Function::New(env, xc::SealHelper, "sealHelper"));
  exports.Set("spawnHelper", Napi::Function::New(env, xc::SpawnHelper, "spawnHelper"));
  exports.Set("socketpair", Napi::Function::New(env, xc::Socketpair, "socketpair"));
  exports.Set("send", Napi::Function::New(env, xc::Send, "send"));
  exports.Set("receive", Napi::Function::New(env, xc::Receive, "receive"));
  exports.Set("pidfdOpen", Napi::Function::New(env, xc::PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, xc::PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("watchExit", Napi::Function::New(env, xc::WatchExit, "watchExit"));
  exports.Set("tryReap", Napi::Function::New(env, xc::TryReap, "tryReap"));
  exports.Set("mkfifo", Napi::Function::New(env, xc::Mkfifo, "mkfifo"));
  exports.Set("flock", Napi::Function::New(env, xc::Flock, "flock"));
  exports.Set("openInRoot", Napi::Function::New(env, xc::OpenInRoot, "openInRoot"));
  exports.Set("connectUnix", Napi::Function::New(env, xc::ConnectUnix, "connectUnix"));
  exports.Set("setWinsize", Napi::Function::New(env, xc::SetWinsize, "setWinsize"));
  exports.Set("clearOpost", Napi::Function::New(env, xc::ClearOpost, "clearOpost"));
  exports.Set("bpfLoadDeviceProgram", Napi::Function::New(env, xc::BpfLoadDeviceProgram, "bpfLoadDeviceProgram"));
  exports.Set("bpfProgramId", Napi::Function::New(env, xc::BpfProgramId, "bpfProgramId"));
  exports.Set("bpfQueryDevicePrograms", Napi::Function::New(env, xc::BpfQueryDevicePrograms, "bpfQueryDevicePrograms"));
  exports.Set("bpfProgramFdById", Napi::Function::New(env, xc::BpfProgramFdById, "bpfProgramFdById"));
  exports.Set("bpfAttachDeviceProgram", Napi::Function::New(env, xc::BpfAttachDeviceProgram, "bpfAttachDeviceProgram"));
  exports.Set("bpfDetachDeviceProgram", Napi::Function::New(env, xc::BpfDetachDeviceProgram, "bpfDetachDeviceProgram"));
  exports.Set("eventfd", Napi::Function::New(env, xc::Eventfd, "eventfd"));
  exports.Set("readEventfd", Napi::Function::New(env, xc::ReadEventfd, "readEventfd"));
  exports.Set("watchEventfd", Napi::Function::New(env, xc::WatchEventfd, "watchEventfd"));
  exports.Set("watchPriority", Napi::Function::New(env, xc::WatchPriority, "watchPriority"));
  exports.Set("seccompNotifyWatch", Napi::Function::New(env, xc::SeccompNotifyWatch, "seccompNotifyWatch"));
  exports.Set("seccompNotifyRespond", Napi::Function::New(env, xc::SeccompNotifyRespond, "seccompNotifyRespond"));
  exports.Set("seccompNotifyIdValid", Napi::Function::New(env, xc::SeccompNotifyIdValid, "seccompNotifyIdValid"));
  return exports;
}

}  // namespace

NODE_API_MODULE(xcontainer, Init)
