// POSIX (Linux, macOS) implementation of socket_ops.h. TCP_INFO differs too
// much between the two kernels to share: see tcp_info_linux.cc and
// tcp_info_darwin.cc.
#include "socket_ops.h"

#include <cerrno>
#include <climits>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

namespace sl {

namespace {

#if defined(__APPLE__)
// SO_LINGER counts clock ticks on macOS; SO_LINGER_SEC counts seconds. XNU
// keeps seconds * hz (hz = 100) in a short and truncates larger values
// silently, so 327 s is the most that is stored, and read back, exactly.
constexpr int kLingerOption = SO_LINGER_SEC;
constexpr int kLingerLimit = SHRT_MAX / 100;
#else
constexpr int kLingerOption = SO_LINGER;
constexpr int kLingerLimit = INT_MAX;
#endif

int LastError() { return -errno; }

#if defined(__APPLE__)
// XNU refuses setsockopt (EINVAL) once both directions are shut down unless
// the socket opted in; the library must still switch linger then, at close.
void AllowOptionsAfterShutdown(int fd) {
  struct so_np_extensions ext = {SONPX_SETOPTSHUT, SONPX_SETOPTSHUT};
  setsockopt(fd, SOL_SOCKET, SO_NP_EXTENSIONS, &ext, sizeof ext);
}
#else
void AllowOptionsAfterShutdown(int) {}
#endif

}  // namespace

const int kMaxLingerSeconds = kLingerLimit;
const Sock kMaxSock = INT_MAX;

int SetLinger(Sock s, bool enabled, int seconds) {
  AllowOptionsAfterShutdown(static_cast<int>(s));
  struct linger value;
  value.l_onoff = enabled ? 1 : 0;
  value.l_linger = enabled ? seconds : 0;
  if (setsockopt(static_cast<int>(s), SOL_SOCKET, kLingerOption, &value,
                 sizeof value) != 0)
    return LastError();
  return 0;
}

int GetLinger(Sock s, Linger* out) {
  AllowOptionsAfterShutdown(static_cast<int>(s));
  struct linger value = {};
  socklen_t len = sizeof value;
  if (getsockopt(static_cast<int>(s), SOL_SOCKET, kLingerOption, &value,
                 &len) != 0)
    return LastError();
  out->enabled = value.l_onoff != 0;
  // Linux keeps the old l_linger when linger is off: report 0 then.
  out->seconds = out->enabled ? value.l_linger : 0;
  return 0;
}

int ShutdownWrite(Sock s) {
  if (shutdown(static_cast<int>(s), SHUT_WR) != 0) return LastError();
  return 0;
}

int ReadableBytes(Sock s, int64_t* out) {
  int bytes = 0;
  if (ioctl(static_cast<int>(s), FIONREAD, &bytes) != 0) return LastError();
  *out = bytes;
  return 0;
}

int PendingError(Sock s, int* out) {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(static_cast<int>(s), SOL_SOCKET, SO_ERROR, &error, &len) != 0)
    return LastError();
  *out = -error;
  return 0;
}

int HoldSocket(Sock s, Sock* held) {
  int fd = fcntl(static_cast<int>(s), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return LastError();
  *held = fd;
  return 0;
}

int ReleaseHeld(Sock held) {
  return close(static_cast<int>(held)) == 0 ? 0 : LastError();
}

int CloseDuplicate(Sock dup) {
  return close(static_cast<int>(dup)) == 0 ? 0 : LastError();
}

}  // namespace sl
