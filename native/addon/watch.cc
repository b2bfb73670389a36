#include "watch.h"

#include <fcntl.h>

#include "errors.h"

namespace xc {

PollWatch::PollWatch(Napi::Env env, const char* resource_name)
    : env_(env), async_context_(env, resource_name) {}

PollWatch::~PollWatch() {
  if (owner_ != nullptr) owner_->poll_ = nullptr;
}

Napi::Value PollWatch::Begin(PollWatch* w, int fd, int events) {
  Napi::Env env = w->env_;
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);

  // uv_poll_init makes the fd O_NONBLOCK, on the file description the caller
  // shares: a blocking socket would then fail send() with EAGAIN, a pidfd
  // would change waitid(). We recv with MSG_DONTWAIT and waitid with WNOHANG,
  // so we put the caller's flags back.
  int flags = fcntl(fd, F_GETFL);
  int err = uv_poll_init(loop, &w->handle_, fd);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(fd, F_SETFL, flags);
  if (err != 0) {
    delete w;
    ThrowErrno(env, -err, "uv_poll_init");
    return env.Undefined();
  }
  w->handle_.data = w;
  err = uv_poll_start(&w->handle_, events, OnPoll);
  if (err != 0) {
    w->Close();
    ThrowErrno(env, -err, "uv_poll_start");
    return env.Undefined();
  }
  // A worker thread's environment may end with the watch open: close it then.
  napi_add_async_cleanup_hook(env, OnEnvCleanup, w, &w->cleanup_hook_);
  return Watch::New(env, w);
}

void PollWatch::Close() {
  if (closing_) return;
  closing_ = true;
  uv_poll_stop(&handle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), OnClosed);
}

void PollWatch::Ref() {
  if (!closing_) uv_ref(reinterpret_cast<uv_handle_t*>(&handle_));
}

void PollWatch::Unref() {
  if (!closing_) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_));
}

bool PollWatch::Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  // napi_make_callback wants an object as `this` (undefined is a TypeError).
  fn.MakeCallback(env_.Global(), args, async_context_);
  if (!env_.IsExceptionPending()) return true;
  // Nothing up the stack can catch it (we run from libuv): raise it as
  // uncaught, so process 'uncaughtException' sees it as for any event.
  Napi::Error error = env_.GetAndClearPendingException();
  napi_fatal_exception(env_, error.Value());
  return false;
}

void PollWatch::OnPoll(uv_poll_t* handle, int status, int events) {
  PollWatch* w = static_cast<PollWatch*>(handle->data);
  if (!w->closing_) w->OnEvent(status, events);
}

void PollWatch::OnClosed(uv_handle_t* handle) {
  PollWatch* w = static_cast<PollWatch*>(handle->data);
  if (w->cleanup_hook_ != nullptr) napi_remove_async_cleanup_hook(w->cleanup_hook_);
  delete w;
}

void PollWatch::OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  // OnClosed removes the hook, which tells Node the cleanup is done.
  static_cast<PollWatch*>(arg)->Close();
}

void Watch::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Watch",
                                    {
                                        InstanceMethod<&Watch::Close>("close"),
                                        InstanceMethod<&Watch::Ref>("ref"),
                                        InstanceMethod<&Watch::Unref>("unref"),
                                    });
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(ctor)));
}

Napi::Object Watch::New(Napi::Env env, PollWatch* poll) {
  Napi::Object obj = env.GetInstanceData<Napi::FunctionReference>()->New({});
  Watch* watch = Unwrap(obj);
  watch->poll_ = poll;
  poll->owner_ = watch;
  return obj;
}

Watch::Watch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watch>(info) {}

Watch::~Watch() {
  if (poll_ != nullptr) poll_->owner_ = nullptr;
}

void Watch::Close(const Napi::CallbackInfo&) {
  if (poll_ != nullptr) poll_->Close();
}

void Watch::Ref(const Napi::CallbackInfo&) {
  if (poll_ != nullptr) poll_->Ref();
}

void Watch::Unref(const Napi::CallbackInfo&) {
  if (poll_ != nullptr) poll_->Unref();
}

}  // namespace xc
