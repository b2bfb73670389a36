// A libuv poll watch on an fd, and the JS Watch object {close, ref, unref}
// handed back for it. receive() and watchExit() derive from PollWatch.
#pragma once

#include <napi.h>
#include <uv.h>

#include <initializer_list>

namespace xc {

class Watch;

// Owns a uv_poll_t. It lives until libuv's close callback, independent of the
// JS Watch object (which may be garbage collected while the watch runs: the
// callbacks are held by strong references, the loop by the handle).
class PollWatch {
 public:
  // Starts watching `fd` for `events` and returns the JS Watch; on failure it
  // throws (syscall "uv_poll_init"/"uv_poll_start"), deletes `w` and returns undefined.
  static Napi::Value Begin(PollWatch* w, int fd, int events);

  // Stops the watch and closes the handle; idempotent. No callback runs after it.
  void Close();
  void Ref();
  void Unref();

 protected:
  PollWatch(Napi::Env env, const char* resource_name);
  virtual ~PollWatch();
  virtual void OnEvent(int status, int events) = 0;
  bool closing() const { return closing_; }
  // Calls `fn` the way Node calls event callbacks (MakeCallback: async hooks,
  // microtasks after); an exception it throws becomes an uncaught exception.
  // Returns false if it threw. The caller holds a HandleScope.
  bool Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args);

  Napi::Env env_;

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg);

  uv_poll_t handle_;
  bool closing_ = false;
  Napi::AsyncContext async_context_;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
  Watch* owner_ = nullptr;
  friend class Watch;
};

// The JS face of a PollWatch: close(), ref(), unref().
class Watch : public Napi::ObjectWrap<Watch> {
 public:
  static void Init(Napi::Env env);
  static Napi::Object New(Napi::Env env, PollWatch* poll);
  explicit Watch(const Napi::CallbackInfo& info);
  ~Watch() override;

 private:
  void Close(const Napi::CallbackInfo& info);
  void Ref(const Napi::CallbackInfo& info);
  void Unref(const Napi::CallbackInfo& info);

  PollWatch* poll_ = nullptr;  // null once the handle is closed
  friend class PollWatch;
};

}  // namespace xc
