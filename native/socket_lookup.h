// Finding the OS socket behind a libuv TCP handle when Node does not expose
// it (on Windows `handle.fd` is -1): walk the handles of the calling thread's
// event loop and match the socket's own addresses. socket_lookup_win32.cc
// implements it; elsewhere handle.fd is always usable and this is a stub.
#pragma once

#include <string>

#include "socket_ops.h"

struct uv_loop_s;

namespace sl {

struct Endpoint {
  std::string address;  // numeric IPv4/IPv6 address; "" for any
  int port;             // -1 for "no peer" (a listening socket)
};

// Returned by FindSocket where the lookup is not implemented.
constexpr int kLookupUnsupported = -38;  // ENOSYS on Linux; only a marker

int FindSocket(uv_loop_s* loop, const Endpoint& local, const Endpoint& remote,
               Sock* out);

}  // namespace sl
