// getTcpInfo() for macOS: TCP_CONNECTION_INFO (public since 10.11). XNU
// reports the bytes in the send buffer and those sent but not acknowledged.
#include "socket_ops.h"

#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/tcp_fsm.h>
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

int GetTcpInfo(Sock s, TcpInfo* out) {
  struct tcp_connection_info info = {};
  socklen_t len = sizeof info;
  if (getsockopt(static_cast<int>(s), IPPROTO_TCP, TCP_CONNECTION_INFO, &info,
                 &len) != 0)
    return -errno;
  out->state = FromDarwin(info.tcpi_state);
  // tcpi_txunacked counts bytes sent and not acknowledged; tcpi_snd_sbbytes
  // is the whole send buffer, so the rest has not been sent yet.
  int64_t unacked = info.tcpi_txunacked;
  int64_t buffered = info.tcpi_snd_sbbytes;
  out->unacked_bytes = unacked;
  out->unsent_bytes = buffered > unacked ? buffered - unacked : 0;
  return 0;
}

}  // namespace sl
