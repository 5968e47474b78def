// Windows (Winsock) implementation of socket_ops.h.
//
// Errors: Winsock reports WSA* codes; Node on Windows names libuv's own
// negative UV_E* numbers (util.getSystemErrorName(-4077) === 'ECONNRESET'),
// so every failure goes through uv_translate_sys_error(), the very function
// libuv uses for its own sockets: a WSAECONNRESET here gets the same errno
// and code as one from net.Socket. node.exe exports it (see
// win32_delay_load_mingw.cc / node-gyp's delay-load hook for how the addon
// binds to the host process).
//
// getTcpInfo: SIO_TCP_INFO (Windows 10 1703+) gives the kernel's own TCP
// state and the bytes in flight. Where it is missing (older Windows, Wine)
// the state comes from the system's TCP connection table (iphlpapi
// GetTcpTable/GetTcp6Table, which Wine fills from the host kernel), and both byte
// counts are unknown (-1): see FallbackTcpInfo below.
#include "socket_ops.h"
#include "win32_socket.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>
#include <windows.h>

#include <uv.h>

#include <cstring>
#include <vector>

namespace sl {

bool IsListening(SOCKET s) {
  BOOL listening = FALSE;
  int len = sizeof listening;
  return getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN,
                    reinterpret_cast<char*>(&listening), &len) == 0 &&
         listening != FALSE;
}

namespace {

// Winsock's shutdown() mode for the write side (winsock2.h's SD_SEND; spelled
// out so this file does not depend on which SDK defines it).
constexpr int kSdSend = 1;

// SIO_TCP_INFO and TCP_INFO_v0, as documented by Microsoft ("SIO_TCP_INFO
// control code", Windows 10 1703). The SDK headers only declare them when
// NTDDI_VERSION targets that release, which neither node-gyp's MSVC defaults
// nor mingw's guarantee, so the documented layout is declared here.
constexpr DWORD kSioTcpInfo = IOC_INOUT | IOC_VENDOR | 39;

struct TcpInfoV0 {
  int State;  // TCPSTATE: CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED,
              // FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT
  ULONG Mss;
  ULONG64 ConnectionTimeMs;
  BOOLEAN TimestampsEnabled;
  ULONG RttUs;
  ULONG MinRttUs;
  ULONG BytesInFlight;
  ULONG Cwnd;
  ULONG SndWnd;
  ULONG RcvWnd;
  ULONG RcvBuf;
  ULONG64 BytesOut;
  ULONG64 BytesIn;
  ULONG BytesReordered;
  ULONG BytesRetrans;
  ULONG FastRetrans;
  ULONG DupAcksIn;
  ULONG TimeoutEpisodes;
  UCHAR SynRetrans;
};

int Translate(int sys_error) {
  int err = uv_translate_sys_error(sys_error);
  return err < 0 ? err : UV_EINVAL;
}

int LastError() { return Translate(WSAGetLastError()); }

SOCKET ToSocket(Sock s) { return static_cast<SOCKET>(s); }

// TCPSTATE (SIO_TCP_INFO) and MIB_TCP_STATE (the connection table) to ours.
TcpState FromTcpState(int state) {
  switch (state) {
    case 1: return TcpState::kListen;
    case 2: return TcpState::kSynSent;
    case 3: return TcpState::kSynReceived;
    case 4: return TcpState::kEstablished;
    case 5: return TcpState::kFinWait1;
    case 6: return TcpState::kFinWait2;
    case 7: return TcpState::kCloseWait;
    case 8: return TcpState::kClosing;
    case 9: return TcpState::kLastAck;
    case 10: return TcpState::kTimeWait;
    default: return TcpState::kClosed;
  }
}

TcpState FromMibState(DWORD state) {
  switch (state) {
    case MIB_TCP_STATE_LISTEN: return TcpState::kListen;
    case MIB_TCP_STATE_SYN_SENT: return TcpState::kSynSent;
    case MIB_TCP_STATE_SYN_RCVD: return TcpState::kSynReceived;
    case MIB_TCP_STATE_ESTAB: return TcpState::kEstablished;
    case MIB_TCP_STATE_FIN_WAIT1: return TcpState::kFinWait1;
    case MIB_TCP_STATE_FIN_WAIT2: return TcpState::kFinWait2;
    case MIB_TCP_STATE_CLOSE_WAIT: return TcpState::kCloseWait;
    case MIB_TCP_STATE_CLOSING: return TcpState::kClosing;
    case MIB_TCP_STATE_LAST_ACK: return TcpState::kLastAck;
    case MIB_TCP_STATE_TIME_WAIT: return TcpState::kTimeWait;
    default: return TcpState::kClosed;  // CLOSED, DELETE_TCB
  }
}

// Reads the system's IPv4 or IPv6 TCP connection table (GetTcpTable /
// GetTcp6Table, which Wine fills from the host kernel), growing the buffer
// while the table grows under us. Not GetExtendedTcpTable's OWNER_PID
// classes: finding each connection's process costs ~0.2 s a call on Wine.
template <typename Table>
bool ReadTcpTable(ULONG(WINAPI* read)(Table*, PULONG, BOOL), std::vector<char>* buffer) {
  ULONG size = 4096;
  for (int attempt = 0; attempt < 4; ++attempt) {
    buffer->resize(size);
    ULONG got = size;
    ULONG rc = read(reinterpret_cast<Table*>(buffer->data()), &got, FALSE);
    if (rc == NO_ERROR) return true;
    if (rc != ERROR_INSUFFICIENT_BUFFER) return false;
    size = got + 4096;
  }
  return false;
}

// The table's ports are in network byte order in the low 16 bits.
bool SamePort(DWORD table_port, USHORT sin_port) {
  return static_cast<USHORT>(table_port & 0xffff) == sin_port;
}

DWORD StateOf(const MIB_TCPROW& row) { return row.dwState; }
DWORD StateOf(const MIB_TCP6ROW& row) { return static_cast<DWORD>(row.State); }

bool Matches(const MIB_TCPROW& row, const sockaddr_in& l, const sockaddr_in& p) {
  return row.dwLocalAddr == l.sin_addr.s_addr && SamePort(row.dwLocalPort, l.sin_port) &&
         row.dwRemoteAddr == p.sin_addr.s_addr && SamePort(row.dwRemotePort, p.sin_port);
}

bool Matches(const MIB_TCP6ROW& row, const sockaddr_in6& l, const sockaddr_in6& p) {
  return std::memcmp(&row.LocalAddr, &l.sin6_addr, 16) == 0 &&
         SamePort(row.dwLocalPort, l.sin6_port) &&
         std::memcmp(&row.RemoteAddr, &p.sin6_addr, 16) == 0 &&
         SamePort(row.dwRemotePort, p.sin6_port);
}

template <typename Table, typename Address>
bool FindRow(ULONG(WINAPI* read)(Table*, PULONG, BOOL), const sockaddr_storage& local,
             const sockaddr_storage& peer, TcpState* out) {
  std::vector<char> buffer;
  if (!ReadTcpTable(read, &buffer)) return false;
  auto* table = reinterpret_cast<const Table*>(buffer.data());
  auto& l = reinterpret_cast<const Address&>(local);
  auto& p = reinterpret_cast<const Address&>(peer);
  for (DWORD i = 0; i < table->dwNumEntries; ++i) {
    if (Matches(table->table[i], l, p)) {
      *out = FromMibState(StateOf(table->table[i]));
      return true;
    }
  }
  return false;
}

// The connection's state from the system's TCP table, looked up by its
// addresses (a connection's address pair is unique). false when it is not
// there or the table cannot be read.
bool StateFromTable(const sockaddr_storage& local, const sockaddr_storage& peer,
                    TcpState* out) {
  if (local.ss_family != peer.ss_family) return false;
  if (local.ss_family == AF_INET)
    return FindRow<MIB_TCPTABLE, sockaddr_in>(GetTcpTable, local, peer, out);
  if (local.ss_family == AF_INET6)
    return FindRow<MIB_TCP6TABLE, sockaddr_in6>(GetTcp6Table, local, peer, out);
  return false;
}

// getTcpInfo without SIO_TCP_INFO. What it reports:
// - a listening socket (SO_ACCEPTCONN): LISTEN;
// - a socket with a peer: its row in the system's TCP table (the kernel's
//   real state, FIN_WAIT_2, CLOSE_WAIT, ... included); if the table has no
//   row for it, ESTABLISHED, the one state getpeername() success proves
//   best (a connection that has gone away makes getpeername() fail);
// - a socket without a peer (never connected, or reset): CLOSED.
// Byte counts are always unknown (-1) here.
int FallbackTcpInfo(SOCKET s, TcpInfo* out) {
  out->unsent_bytes = -1;
  out->unacked_bytes = -1;
  sockaddr_storage local = {};
  int local_len = sizeof local;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&local), &local_len) != 0)
    return LastError();
  if (IsListening(s)) {
    out->state = TcpState::kListen;
    return 0;
  }
  sockaddr_storage peer = {};
  int peer_len = sizeof peer;
  if (getpeername(s, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    out->state = TcpState::kClosed;
    return 0;
  }
  if (!StateFromTable(local, peer, &out->state)) out->state = TcpState::kEstablished;
  return 0;
}

}  // namespace

// LINGER's fields are u_short.
const int kMaxLingerSeconds = 65535;
// A SOCKET is a UINT_PTR; JavaScript carries it exactly up to 2^53.
const Sock kMaxSock = int64_t{1} << 53;

int SetLinger(Sock s, bool enabled, int seconds) {
  LINGER value;
  value.l_onoff = enabled ? 1 : 0;
  value.l_linger = static_cast<u_short>(enabled ? seconds : 0);
  if (setsockopt(ToSocket(s), SOL_SOCKET, SO_LINGER,
                 reinterpret_cast<const char*>(&value), sizeof value) != 0)
    return LastError();
  return 0;
}

int GetLinger(Sock s, Linger* out) {
  LINGER value = {};
  int len = sizeof value;
  if (getsockopt(ToSocket(s), SOL_SOCKET, SO_LINGER,
                 reinterpret_cast<char*>(&value), &len) != 0)
    return LastError();
  out->enabled = value.l_onoff != 0;
  out->seconds = out->enabled ? value.l_linger : 0;
  return 0;
}

int ShutdownWrite(Sock s) {
  if (shutdown(ToSocket(s), kSdSend) != 0) return LastError();
  return 0;
}

int GetTcpInfo(Sock s, TcpInfo* out) {
  SOCKET sock = ToSocket(s);
  DWORD version = 0;
  TcpInfoV0 info = {};
  DWORD returned = 0;
  if (WSAIoctl(sock, kSioTcpInfo, &version, sizeof version, &info, sizeof info,
               &returned, nullptr, nullptr) != 0) {
    int error = WSAGetLastError();
    // Not a socket, or closed: a real error. Anything else (WSAEOPNOTSUPP,
    // WSAEINVAL from a Windows before 1703 or from Wine): the fallback.
    if (error == WSAENOTSOCK || error == WSAEBADF) return Translate(error);
    return FallbackTcpInfo(sock, out);
  }
  out->state = FromTcpState(info.State);
  // Windows does not split the send queue: bytes not yet sent are unknown,
  // bytes sent and not yet acknowledged are "in flight".
  out->unsent_bytes = -1;
  out->unacked_bytes = out->state == TcpState::kListen ? -1 : info.BytesInFlight;
  return 0;
}

// One WSAIoctl on Windows 10 1703+; the table lookup elsewhere (Wine).
int UnacknowledgedBytes(Sock s, int64_t* out) {
  TcpInfo info = {};
  int err = GetTcpInfo(s, &info);
  if (err == 0) *out = UnacknowledgedFromState(s, info.state);
  return err;
}

int ReadableBytes(Sock s, int64_t* out) {
  u_long bytes = 0;
  if (ioctlsocket(ToSocket(s), FIONREAD, &bytes) != 0) return LastError();
  *out = bytes;
  return 0;
}

// A duplicated SOCKET is not a second reference to the same connection on
// Windows (and only Linux's close blocks on a linger): nothing to hold.
int HoldSocket(Sock, Sock*) { return UV_ENOSYS; }
int ReleaseHeld(Sock) { return UV_ENOSYS; }
// No runtime hands out duplicated SOCKETs here.
int CloseDuplicate(Sock) { return UV_ENOSYS; }

int PendingError(Sock s, int* out) {
  int error = 0;
  int len = sizeof error;
  if (getsockopt(ToSocket(s), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&error),
                 &len) != 0)
    return LastError();
  *out = error != 0 ? Translate(error) : 0;
  return 0;
}

}  // namespace sl
