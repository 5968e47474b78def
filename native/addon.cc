// Thin N-API glue over socket_ops.h. Arguments are validated in TypeScript
// (src/); here we only refuse what could make the C++ side misbehave. Every
// operation returns 0 or a negative error number, never throws on a syscall
// failure: the TypeScript side turns that into a Node-style system error.
#include <napi.h>

#include <cmath>
#include <set>
#include <vector>

#include "socket_ops.h"
#include "socket_lookup.h"
#include "wakeups.h"

namespace {

// Each reader makes one N-API call: these functions sit on hot paths (a
// lingering close polls through them), so no separate type checks.
// A socket value as JavaScript holds it (a double): only an exact integer in
// this platform's range names a socket; anything else would be truncated
// onto some other descriptor.
bool ToSock(double value, sl::Sock* out) {
  if (!std::isfinite(value) || value < 0 ||
      value > static_cast<double>(sl::kMaxSock) || std::trunc(value) != value)
    return false;
  *out = static_cast<sl::Sock>(value);
  return true;
}

bool ReadSock(const Napi::CallbackInfo& info, size_t i, sl::Sock* out) {
  double value = 0;
  if (napi_get_value_double(info.Env(), info[i], &value) != napi_ok) {
    Napi::TypeError::New(info.Env(), "socket descriptor must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  if (!ToSock(value, out)) {
    Napi::RangeError::New(info.Env(), "socket descriptor out of range")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

template <typename T>
bool ReadArray(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type,
               size_t min_length, T** out, size_t* length = nullptr) {
  napi_typedarray_type actual;
  size_t elements = 0;
  void* data = nullptr;
  bool ok = info[i].IsTypedArray() &&
            napi_get_typedarray_info(info.Env(), info[i], &actual, &elements,
                                     &data, nullptr, nullptr) == napi_ok &&
            actual == type && elements >= min_length;
  if (!ok) {
    Napi::TypeError::New(info.Env(), "bad output array")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<T*>(data);
  if (length != nullptr) *length = elements;
  return true;
}

Napi::Value Result(const Napi::CallbackInfo& info, int err) {
  napi_value value;
  napi_create_int32(info.Env(), err, &value);
  return Napi::Value(info.Env(), value);
}

// setLinger(sock, enabled, seconds) -> err. The hottest call (every
// setLinger()): plain Node-API, no wrapper objects, one call per argument.
napi_value SetLinger(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_value result = nullptr;
  double sock = 0;
  bool enabled = false;
  int32_t seconds = 0;
  sl::Sock s = -1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (napi_get_value_double(env, argv[0], &sock) != napi_ok) {
    napi_throw_type_error(env, nullptr, "socket descriptor must be a number");
  } else if (!ToSock(sock, &s)) {
    napi_throw_range_error(env, nullptr, "socket descriptor out of range");
  } else if (napi_get_value_bool(env, argv[1], &enabled) != napi_ok ||
             napi_get_value_int32(env, argv[2], &seconds) != napi_ok) {
    napi_throw_type_error(env, nullptr, "enabled must be a boolean, seconds a number");
  } else if (seconds < 0 || seconds > sl::kMaxLingerSeconds) {
    napi_throw_range_error(env, nullptr, "seconds out of range");
  } else {
    napi_create_int32(env, sl::SetLinger(s, enabled, seconds), &result);
  }
  return result;
}

// getLinger(sock, out: Int32Array[2]) -> err; out = [enabled, seconds]
Napi::Value GetLinger(const Napi::CallbackInfo& info) {
  sl::Sock s = -1;
  int32_t* out;
  if (!ReadSock(info, 0, &s) ||
      !ReadArray(info, 1, napi_int32_array, 2, &out))
    return {};
  sl::Linger linger = {};
  int err = sl::GetLinger(s, &linger);
  if (err == 0) {
    out[0] = linger.enabled ? 1 : 0;
    out[1] = linger.seconds;
  }
  return Result(info, err);
}

// shutdownWrite(sock) -> err. Only the write side: the library enforces the
// read side itself (src/shutdown.ts), the Winsock way on every platform.
Napi::Value ShutdownWrite(const Napi::CallbackInfo& info) {
  sl::Sock s = -1;
  if (!ReadSock(info, 0, &s)) return {};
  return Result(info, sl::ShutdownWrite(s));
}

// tcpInfo(sock, out: Float64Array[3]) -> err; out = [state, unsent, unacked]
Napi::Value TcpInfo(const Napi::CallbackInfo& info) {
  sl::Sock s = -1;
  double* out;
  if (!ReadSock(info, 0, &s) ||
      !ReadArray(info, 1, napi_float64_array, 3, &out))
    return {};
  sl::TcpInfo tcp = {};
  int err = sl::GetTcpInfo(s, &tcp);
  if (err == 0) {
    out[0] = static_cast<double>(tcp.state);
    out[1] = static_cast<double>(tcp.unsent_bytes);
    out[2] = static_cast<double>(tcp.unacked_bytes);
  }
  return Result(info, err);
}

// unacknowledged(socks, last, out: Float64Array): out[i] = what socks[i] has
// sent and the peer not yet acknowledged (0: all of it, FIN included; -1:
// not yet, uncounted here), -2 when it cannot be read (closed), -3 when the
// connection was reset. Only a socket whose count has not moved since the
// last poll (last[i]), or one the kernel woke (last[i] -Infinity), is asked
// whether it was reset: one call for a whole poll tick, and the second
// syscall only where progress stopped.
Napi::Value Unacknowledged(const Napi::CallbackInfo& info) {
  double* socks;
  double* last;
  double* out;
  size_t count = 0, last_length = 0, capacity = 0;
  if (!ReadArray(info, 0, napi_float64_array, 0, &socks, &count) ||
      !ReadArray(info, 1, napi_float64_array, 0, &last, &last_length) ||
      !ReadArray(info, 2, napi_float64_array, 0, &out, &capacity))
    return {};
  if (capacity < count || last_length < count) {
    Napi::RangeError::New(info.Env(), "array too short")
        .ThrowAsJavaScriptException();
    return {};
  }
  for (size_t i = 0; i < count; i++) {
    int64_t pending = 0;
    sl::Sock s = -1;
    if (!ToSock(socks[i], &s) || sl::UnacknowledgedBytes(s, &pending) != 0) {
      out[i] = -2;
      continue;
    }
    bool reset = false;
    bool ask = static_cast<double>(pending) == last[i] || last[i] == -INFINITY;
    if (pending > 0 && ask &&
        sl::WasReset(s, &reset) == 0 && reset)
      pending = sl::kWasReset;
    out[i] = static_cast<double>(pending);
  }
  return info.Env().Undefined();
}

// readableBytes(sock) -> bytes (>= 0) or err (< 0)
Napi::Value ReadableBytes(const Napi::CallbackInfo& info) {
  sl::Sock s = -1;
  if (!ReadSock(info, 0, &s)) return {};
  int64_t bytes = 0;
  int err = sl::ReadableBytes(s, &bytes);
  return Napi::Number::New(info.Env(), err != 0 ? err : static_cast<double>(bytes));
}

// pendingError(sock) -> the pending socket error (< 0), 0 for none, or err
Napi::Value PendingError(const Napi::CallbackInfo& info) {
  sl::Sock s = -1;
  if (!ReadSock(info, 0, &s)) return {};
  int pending = 0;
  int err = sl::PendingError(s, &pending);
  return Result(info, err != 0 ? err : pending);
}

struct WakeupGlue;

// What this thread's environment keeps: the sockets it holds (HoldSocket)
// and its wake-ups (OpenWakeups). When the environment goes away (a worker
// ends) Node has already closed its handles' descriptors, natively; the held
// connections close here, linger off, so no close in the teardown can block
// on a kernel linger.
struct PerEnv {
  std::set<sl::Sock> socks;
  // One per openWakeups() call: two copies of the library in one thread
  // (an ESM and a CJS build, two versions) each have their own.
  std::vector<WakeupGlue*> wakeups;
  ~PerEnv() {
    for (sl::Sock held : socks) {
      sl::SetLinger(held, false, 0);
      sl::ReleaseHeld(held);
    }
  }
};

PerEnv& HeldOf(Napi::Env env) { return *env.GetInstanceData<PerEnv>(); }

// holdSocket(sock) -> held descriptor (>= 0) or err (< 0)
Napi::Value HoldSocket(const Napi::CallbackInfo& info) {
  sl::Sock s = -1;
  if (!ReadSock(info, 0, &s)) return {};
  sl::Sock held = -1;
  int err = sl::HoldSocket(s, &held);
  if (err == 0) HeldOf(info.Env()).socks.insert(held);
  return Napi::Number::New(info.Env(), err != 0 ? err : static_cast<double>(held));
}

// releaseHeld(held) -> err; only descriptors this environment holds.
Napi::Value ReleaseHeld(const Napi::CallbackInfo& info) {
  sl::Sock held = -1;
  if (!ReadSock(info, 0, &held)) return {};
  // Not (or no longer) held here: nothing to drop, and never someone else's fd.
  if (HeldOf(info.Env()).socks.erase(held) == 0) return Result(info, 0);
  return Result(info, sl::ReleaseHeld(held));
}

// closeDuplicate(fd) -> err: closes a descriptor the runtime duplicated for
// this package (Deno's fdForIpc()), which its own fs.closeSync refuses.
Napi::Value CloseDuplicate(const Napi::CallbackInfo& info) {
  sl::Sock dup = -1;
  if (!ReadSock(info, 0, &dup)) return {};
  return Result(info, sl::CloseDuplicate(dup));
}

// The wake-ups of one environment: the JavaScript callback that hears of
// them and the array it reads their tokens from. Freed when the environment
// goes away (an async cleanup hook: libuv must close the poll handle first).
struct WakeupGlue {
  napi_env env;
  sl::Wakeups* wakeups;
  napi_ref callback;
  napi_ref tokens_array;
  uint32_t* tokens;
  int capacity;
  napi_async_context context;
  napi_async_cleanup_hook_handle cleanup;
};

// On the loop: the woken sockets' tokens into the array, then one callback.
// When the environment is stopping, JavaScript cannot run: the call fails
// and nothing else happens.
void OnWake(void* arg) {
  auto* glue = static_cast<WakeupGlue*>(arg);
  int count = sl::TakeWoken(glue->wakeups, glue->tokens, glue->capacity);
  if (count == 0) return;
  napi_env env = glue->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, receiver, argv, result;
  // napi_make_callback wants an object to call on: the global one.
  if (napi_get_reference_value(env, glue->callback, &callback) == napi_ok &&
      napi_get_global(env, &receiver) == napi_ok &&
      napi_create_int32(env, count, &argv) == napi_ok &&
      napi_make_callback(env, glue->context, receiver, callback, 1, &argv, &result) != napi_ok) {
    // Nobody called us: a throw is the process's uncaught exception.
    bool pending = false;
    napi_value error;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok)
      napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

void OnWakeupsClosed(void* arg) {
  auto* glue = static_cast<WakeupGlue*>(arg);
  napi_remove_async_cleanup_hook(glue->cleanup);
  delete glue;
}

void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* glue = static_cast<WakeupGlue*>(arg);
  napi_delete_reference(glue->env, glue->callback);
  napi_delete_reference(glue->env, glue->tokens_array);
  napi_async_destroy(glue->env, glue->context);
  sl::CloseWakeups(glue->wakeups, OnWakeupsClosed, glue);
}

// openWakeups(tokens: Uint32Array, onWake(count)) -> id (>= 0) or err; -ENOSYS
// (as a libuv error) where the platform has no wake-up path.
Napi::Value OpenWakeups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t* tokens;
  size_t capacity = 0;
  if (!ReadArray(info, 0, napi_uint32_array, 1, &tokens, &capacity)) return {};
  if (!info[1].IsFunction()) {
    Napi::TypeError::New(env, "onWake must be a function").ThrowAsJavaScriptException();
    return {};
  }
  uv_loop_s* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    return Result(info, sl::kWakeupsUnsupported);
  auto* glue = new WakeupGlue{};
  glue->env = env;
  glue->tokens = tokens;
  glue->capacity = capacity > 1u << 20 ? 1 << 20 : static_cast<int>(capacity);
  int err = sl::OpenWakeups(loop, OnWake, glue, &glue->wakeups);
  if (err != 0) {
    delete glue;
    return Result(info, err);
  }
  napi_value name;
  napi_create_string_utf8(env, "socket-linger:wakeups", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, info[1], 1, &glue->callback);
  napi_create_reference(env, info[0], 1, &glue->tokens_array);
  napi_async_init(env, nullptr, name, &glue->context);
  napi_add_async_cleanup_hook(env, OnEnvCleanup, glue, &glue->cleanup);
  std::vector<WakeupGlue*>& all = HeldOf(env).wakeups;
  all.push_back(glue);
  return Result(info, static_cast<int>(all.size() - 1));
}

// The wake-ups an id from openWakeups names, or nullptr (an error thrown).
WakeupGlue* ReadWakeups(const Napi::CallbackInfo& info) {
  uint32_t id = 0;
  std::vector<WakeupGlue*>& all = HeldOf(info.Env()).wakeups;
  if (napi_get_value_uint32(info.Env(), info[0], &id) != napi_ok || id >= all.size()) {
    Napi::RangeError::New(info.Env(), "no such wake-ups").ThrowAsJavaScriptException();
    return nullptr;
  }
  return all[id];
}

// watchSocket(id, sock, token) -> err
Napi::Value WatchSocket(const Napi::CallbackInfo& info) {
  WakeupGlue* glue = ReadWakeups(info);
  sl::Sock s = -1;
  if (glue == nullptr || !ReadSock(info, 1, &s)) return {};
  uint32_t token = 0;
  napi_get_value_uint32(info.Env(), info[2], &token);
  return Result(info, sl::WatchSocket(glue->wakeups, s, token));
}

// unwatchSocket(id, sock) -> err
Napi::Value UnwatchSocket(const Napi::CallbackInfo& info) {
  WakeupGlue* glue = ReadWakeups(info);
  sl::Sock s = -1;
  if (glue == nullptr || !ReadSock(info, 1, &s)) return {};
  return Result(info, sl::UnwatchSocket(glue->wakeups, s));
}

// findSocket(localAddress, localPort, remoteAddress, remotePort)
//   -> SOCKET (>= 0) or err (< 0). Only needed where handle.fd is -1 (Windows).
// A negative remotePort says which peerless socket is meant (see
// socket_lookup_win32.cc): -1 any, -2 a listener, -3 one not listening.
Napi::Value FindSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() ||
      !info[2].IsString() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "bad socket address").ThrowAsJavaScriptException();
    return {};
  }
  sl::Endpoint local{info[0].As<Napi::String>().Utf8Value(),
                     info[1].As<Napi::Number>().Int32Value()};
  sl::Endpoint remote{info[2].As<Napi::String>().Utf8Value(),
                      info[3].As<Napi::Number>().Int32Value()};
  uv_loop_s* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    return Napi::Number::New(env, sl::kLookupUnsupported);
  sl::Sock found = 0;
  int err = sl::FindSocket(loop, local, remote, &found);
  return Napi::Number::New(env, err != 0 ? err : static_cast<double>(found));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new PerEnv());
  exports.Set("holdSocket", Napi::Function::New(env, HoldSocket, "holdSocket"));
  exports.Set("releaseHeld", Napi::Function::New(env, ReleaseHeld, "releaseHeld"));
  exports.Set("closeDuplicate",
              Napi::Function::New(env, CloseDuplicate, "closeDuplicate"));
  napi_value set_linger;
  napi_create_function(env, "setLinger", NAPI_AUTO_LENGTH, SetLinger, nullptr, &set_linger);
  exports.Set("setLinger", Napi::Value(env, set_linger));
  exports.Set("getLinger", Napi::Function::New(env, GetLinger, "getLinger"));
  exports.Set("shutdownWrite",
              Napi::Function::New(env, ShutdownWrite, "shutdownWrite"));
  exports.Set("tcpInfo", Napi::Function::New(env, TcpInfo, "tcpInfo"));
  exports.Set("unacknowledged",
              Napi::Function::New(env, Unacknowledged, "unacknowledged"));
  exports.Set("readableBytes",
              Napi::Function::New(env, ReadableBytes, "readableBytes"));
  exports.Set("pendingError",
              Napi::Function::New(env, PendingError, "pendingError"));
  exports.Set("findSocket", Napi::Function::New(env, FindSocket, "findSocket"));
  exports.Set("openWakeups", Napi::Function::New(env, OpenWakeups, "openWakeups"));
  exports.Set("watchSocket", Napi::Function::New(env, WatchSocket, "watchSocket"));
  exports.Set("unwatchSocket", Napi::Function::New(env, UnwatchSocket, "unwatchSocket"));
  exports.Set("maxLingerSeconds", Napi::Number::New(env, sl::kMaxLingerSeconds));
  return exports;
}

}  // namespace

NODE_API_MODULE(socket_linger, Init)
