// getTcpInfo() for Linux: TCP_INFO for the state, SIOCOUTQ/SIOCOUTQNSD for
// the send queue split into "not yet sent" and "sent, not yet acknowledged".
#include "socket_ops.h"

#include <cerrno>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace sl {

namespace {

TcpState FromLinux(int state) {
  switch (state) {
    case TCP_ESTABLISHED: return TcpState::kEstablished;
    case TCP_SYN_SENT: return TcpState::kSynSent;
    case TCP_SYN_RECV: return TcpState::kSynReceived;
    case TCP_FIN_WAIT1: return TcpState::kFinWait1;
    case TCP_FIN_WAIT2: return TcpState::kFinWait2;
    case TCP_TIME_WAIT: return TcpState::kTimeWait;
    case TCP_CLOSE_WAIT: return TcpState::kCloseWait;
    case TCP_LAST_ACK: return TcpState::kLastAck;
    case TCP_LISTEN: return TcpState::kListen;
    case TCP_CLOSING: return TcpState::kClosing;
    default: return TcpState::kClosed;
  }
}

}  // namespace

int UnacknowledgedBytes(Sock s, int64_t* out) {
  // SIOCOUTQ is write_seq - snd_una, and the FIN takes one sequence number:
  // 0 once the FIN is queued means everything was acknowledged. It takes no
  // socket lock, unlike TCP_INFO, which matters when polling many sockets.
  int queued = 0;
  if (ioctl(static_cast<int>(s), SIOCOUTQ, &queued) != 0) return -errno;
  *out = queued;
  return 0;
}

int GetTcpInfo(Sock s, TcpInfo* out) {
  int fd = static_cast<int>(s);
  struct tcp_info info = {};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -errno;
  out->state = FromLinux(info.tcpi_state);
  out->unsent_bytes = -1;
  out->unacked_bytes = -1;
  if (out->state == TcpState::kListen) return 0;  // the ioctls mean queues there
  int queued = 0;      // SIOCOUTQ: everything in the send queue
  int not_sent = 0;    // SIOCOUTQNSD: the part not yet sent
  if (ioctl(fd, SIOCOUTQ, &queued) == 0 && ioctl(fd, SIOCOUTQNSD, &not_sent) == 0) {
    out->unsent_bytes = not_sent;
    out->unacked_bytes = queued - not_sent;
  }
  return 0;
}

}  // namespace sl
