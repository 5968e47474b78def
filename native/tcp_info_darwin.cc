// getTcpInfo() for macOS: TCP_CONNECTION_INFO (public since 10.11). It gives
// the state and the whole send buffer, but not how much of it has been sent:
// snd_max - snd_una (tcpi_txunacked) is only in the private TCP_INFO.
#include "socket_ops.h"
#include "tcp_fsm_darwin.h"

#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace sl {

namespace {

TcpState FromDarwin(int state) {
  switch (state) {
    case TCPS_LISTEN: return TcpState::kListen;
    case TCPS_SYN_SENT: return TcpState::kSynSent;
    case TCPS_SYN_RECEIVED: return TcpState::kSynReceived;
    case TCPS_ESTABLISHED: return TcpState::kEstablished;
    case TCPS_CLOSE_WAIT: return TcpState::kCloseWait;
    case TCPS_FIN_WAIT_1: return TcpState::kFinWait1;
    case TCPS_CLOSING: return TcpState::kClosing;
    case TCPS_LAST_ACK: return TcpState::kLastAck;
    case TCPS_FIN_WAIT_2: return TcpState::kFinWait2;
    case TCPS_TIME_WAIT: return TcpState::kTimeWait;
    default: return TcpState::kClosed;
  }
}

}  // namespace

int UnacknowledgedBytes(Sock s, int64_t* out) {
  struct tcp_connection_info info = {};
  socklen_t len = sizeof info;
  if (getsockopt(static_cast<int>(s), IPPROTO_TCP, TCP_CONNECTION_INFO, &info,
                 &len) != 0)
    return -errno;
  *out = UnacknowledgedFromState(s, FromDarwin(info.tcpi_state));
  return 0;
}

int GetTcpInfo(Sock s, TcpInfo* out) {
  struct tcp_connection_info info = {};
  socklen_t len = sizeof info;
  if (getsockopt(static_cast<int>(s), IPPROTO_TCP, TCP_CONNECTION_INFO, &info,
                 &len) != 0)
    return -errno;
  out->state = FromDarwin(info.tcpi_state);
  // tcpi_snd_sbbytes counts bytes not yet sent plus bytes sent and not yet
  // acknowledged (acknowledged ones leave the buffer). Only an empty buffer
  // tells both figures; a listener has no send queue, as on Linux.
  bool known = info.tcpi_snd_sbbytes == 0 && out->state != TcpState::kListen;
  out->unsent_bytes = known ? 0 : -1;
  out->unacked_bytes = known ? 0 : -1;
  return 0;
}

}  // namespace sl
