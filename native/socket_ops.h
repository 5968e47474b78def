// The portable interface of the native core: one small set of socket
// operations, implemented once per platform (socket_ops_posix.cc,
// socket_ops_win32.cc) and called by the N-API glue (addon.cc).
//
// Every function returns 0 on success or a negative libuv-style error number
// (-errno on POSIX, the mapped UV_E* value on Windows), so the JavaScript side
// can name it with util.getSystemErrorName().
#pragma once

#include <cstdint>

namespace sl {

// An OS socket: a file descriptor on POSIX, a SOCKET on Windows.
using Sock = int64_t;

// The TCP states every platform is mapped onto (same order as the JS list).
enum class TcpState {
  kClosed, kListen, kSynSent, kSynReceived, kEstablished, kFinWait1,
  kFinWait2, kCloseWait, kClosing, kLastAck, kTimeWait
};

struct Linger {
  bool enabled;
  int seconds;
};

struct TcpInfo {
  TcpState state;
  int64_t unsent_bytes;  // -1 when the platform cannot tell
  int64_t unacked_bytes; // -1 when the platform cannot tell
};

// Largest linger timeout, in seconds, this platform stores exactly.
extern const int kMaxLingerSeconds;

// Largest value a socket can have here (an int fd; a SOCKET handle). The
// glue refuses anything else rather than truncate it onto another socket.
extern const Sock kMaxSock;


int SetLinger(Sock s, bool enabled, int seconds);
int GetLinger(Sock s, Linger* out);
// The write side only (SHUT_WR, SD_SEND): a FIN after what is queued.
int ShutdownWrite(Sock s);
int GetTcpInfo(Sock s, TcpInfo* out);
// After our FIN was queued: how much of what we sent (the FIN counts as one)
// the peer has not acknowledged yet, 0 once it has acknowledged everything;
// where the kernel does not count it, kUncounted until then. One cheap
// syscall: a lingering close polls this.
// Where the kernel cannot count, a connection reset before everything was
// acknowledged reads kWasReset.
constexpr int64_t kUncounted = -1;
constexpr int64_t kWasReset = -3;
int UnacknowledgedBytes(Sock s, int64_t* out);

// The states in which a FIN we sent has been acknowledged.
inline bool FinAcknowledged(TcpState state) {
  return state == TcpState::kFinWait2 || state == TcpState::kTimeWait ||
         state == TcpState::kClosed;
}
// Bytes waiting in the kernel's receive queue (FIONREAD).
int ReadableBytes(Sock s, int64_t* out);
// The socket's pending error (SO_ERROR, which reading clears) as a negative
// error number in *out, 0 when none: how a reset that Node reported as EOF
// can still be told apart from a FIN.
int PendingError(Sock s, int* out);
// A second reference to the socket (*held), so that closing the handle's own
// descriptor does not close the connection yet: a close made where no
// JavaScript runs (a worker's teardown) then cannot block on a linger; the
// library switches the linger off and drops this reference itself.
// -ENOSYS (as a libuv error) where descriptors cannot be duplicated (Windows).
int HoldSocket(Sock s, Sock* held);
// Drops a reference taken by HoldSocket; the connection closes if it was the last.
int ReleaseHeld(Sock held);
// Closes a duplicate of a socket that a runtime handed out (Deno's fdForIpc()).
int CloseDuplicate(Sock dup);

// Whether a connection that still has bytes unacknowledged was reset: it
// reads CLOSED (after both FINs a socket reads CLOSED too, but with nothing
// left unacknowledged). A lingering close asks this of sockets whose count
// stopped moving.
inline int WasReset(Sock s, bool* out) {
  TcpInfo info = {};
  int err = GetTcpInfo(s, &info);
  if (err == 0) *out = info.state == TcpState::kClosed;
  return err;
}

// UnacknowledgedBytes where only the state is known (macOS, Windows): a
// FIN acknowledged, or a reset (CLOSED with an error pending), or neither yet.
inline int64_t UnacknowledgedFromState(Sock s, TcpState state) {
  int pending = 0;
  if (state == TcpState::kClosed && PendingError(s, &pending) == 0 && pending != 0)
    return kWasReset;
  return FinAcknowledged(state) ? 0 : kUncounted;
}

}  // namespace sl
