// FindSocket for Windows, where Node's handle.fd is always -1: walk the
// calling thread's libuv loop, ask each TCP handle for its SOCKET
// (uv_fileno), and keep the one whose own addresses, read from the kernel with
// getsockname/getpeername, equal the ones the JavaScript handle reported.
//
// What `remote` asks for:
//   port >= 0                 a connected socket with exactly this peer;
//   port -1, address ""       a socket without peer, listening or not (what
//                             src/handle.ts sends for "getpeername failed");
//   port -2 (kListenerOnly)   a listening socket (SO_ACCEPTCONN);
//   port -3 (kPeerlessOnly)   a socket that is not listening and has no peer:
//                             a connection that was reset or closed under a
//                             still open handle.
// -2 and -3 exist because a listener and the sockets it accepted share one
// local address: once an accepted connection is reset, getpeername fails on
// it too, and "no peer" alone would fit both.
//
// Never a wrong socket: addresses are compared as numbers (family, address
// bytes, port), and anything but exactly one match is an error: none (the
// handle is closing, or not in this loop) gives UV_EBADF, more than one
// distinct SOCKET gives UV_EADDRINUSE. Each loop belongs to one thread (the
// main thread or a worker's), and uv_walk runs on that thread: nothing here
// is shared between threads.
#include "socket_lookup.h"
#include "win32_socket.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <uv.h>

#include <cstring>

namespace sl {

namespace {

// A parsed endpoint: the same family and bytes a sockaddr carries.
struct Address {
  int family = AF_UNSPEC;  // AF_UNSPEC: "no address" (no peer)
  unsigned char bytes[16] = {};
  unsigned short port = 0;  // host byte order
};

// Node reports addresses as inet_ntop text: "127.0.0.1", "::1",
// "::ffff:127.0.0.1" (an IPv6 socket talking to an IPv4 peer: kept IPv6,
// as the socket itself is). A "%scope" suffix is dropped: the scope id is not
// part of the comparison.
bool Parse(const Endpoint& endpoint, Address* out) {
  if (endpoint.port < 0 || endpoint.port > 65535) return false;
  std::string text = endpoint.address.substr(0, endpoint.address.find('%'));
  out->port = static_cast<unsigned short>(endpoint.port);
  if (text.find(':') != std::string::npos) {
    out->family = AF_INET6;
    return inet_pton(AF_INET6, text.c_str(), out->bytes) == 1;
  }
  out->family = AF_INET;
  return inet_pton(AF_INET, text.c_str(), out->bytes) == 1;
}

bool FromSockaddr(const sockaddr_storage& storage, Address* out) {
  if (storage.ss_family == AF_INET) {
    auto& in = reinterpret_cast<const sockaddr_in&>(storage);
    out->family = AF_INET;
    std::memcpy(out->bytes, &in.sin_addr, 4);
    out->port = ntohs(in.sin_port);
    return true;
  }
  if (storage.ss_family == AF_INET6) {
    auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
    out->family = AF_INET6;
    std::memcpy(out->bytes, &in6.sin6_addr, 16);
    out->port = ntohs(in6.sin6_port);
    return true;
  }
  return false;
}

bool Equal(const Address& a, const Address& b) {
  if (a.family != b.family || a.port != b.port) return false;
  size_t size = a.family == AF_INET ? 4 : a.family == AF_INET6 ? 16 : 0;
  return std::memcmp(a.bytes, b.bytes, size) == 0;
}

constexpr int kAnyPeerless = -1;
constexpr int kListenerOnly = -2;
constexpr int kPeerlessOnly = -3;

struct Search {
  Address local;
  Address remote;  // family AF_UNSPEC: the socket must have no peer
  int mode = 0;    // 0 (a peer), kAnyPeerless, kListenerOnly or kPeerlessOnly
  SOCKET found = INVALID_SOCKET;
  int matches = 0;
};

bool LocalOf(SOCKET s, Address* out) {
  sockaddr_storage storage = {};
  int len = sizeof storage;
  return getsockname(s, reinterpret_cast<sockaddr*>(&storage), &len) == 0 &&
         FromSockaddr(storage, out);
}

// false with *connected = false when the socket has no peer.
bool PeerOf(SOCKET s, Address* out, bool* connected) {
  sockaddr_storage storage = {};
  int len = sizeof storage;
  *connected = getpeername(s, reinterpret_cast<sockaddr*>(&storage), &len) == 0;
  return *connected && FromSockaddr(storage, out);
}

void Visit(uv_handle_t* handle, void* arg) {
  auto* search = static_cast<Search*>(arg);
  if (uv_handle_get_type(handle) != UV_TCP || uv_is_closing(handle)) return;
  uv_os_fd_t fd;
  if (uv_fileno(handle, &fd) != 0) return;
  SOCKET s = reinterpret_cast<SOCKET>(fd);
  if (s == INVALID_SOCKET) return;
  Address local;
  if (!LocalOf(s, &local) || !Equal(local, search->local)) return;
  Address remote;
  bool connected = false;
  bool has_peer = PeerOf(s, &remote, &connected);
  if (search->mode == 0) {
    if (!has_peer || !Equal(remote, search->remote)) return;
  } else {
    if (connected) return;
    if (search->mode == kListenerOnly && !IsListening(s)) return;
    if (search->mode == kPeerlessOnly && IsListening(s)) return;
  }
  if (search->matches > 0 && search->found == s) return;
  search->found = s;
  ++search->matches;
}

}  // namespace

int FindSocket(uv_loop_s* loop, const Endpoint& local, const Endpoint& remote,
               Sock* out) {
  Search search;
  if (!Parse(local, &search.local)) return UV_EINVAL;
  if (remote.port == kAnyPeerless || remote.port == kListenerOnly ||
      remote.port == kPeerlessOnly) {
    if (!remote.address.empty()) return UV_EINVAL;
    search.mode = remote.port;
  } else if (!Parse(remote, &search.remote)) {
    return UV_EINVAL;
  }
  uv_walk(loop, Visit, &search);
  if (search.matches == 0) return UV_EBADF;
  if (search.matches > 1) return UV_EADDRINUSE;
  *out = static_cast<Sock>(search.found);
  return 0;
}

}  // namespace sl
