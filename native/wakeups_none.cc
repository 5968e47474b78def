// Platforms without a kernel wake-up path the library uses (macOS, Windows):
// lingering closes poll (src/poller.ts). XNU's kqueue was reviewed for
// macOS: see the note in BENCHMARKS.md.
#include "wakeups.h"

#include <cerrno>

namespace sl {

#if defined(_WIN32)
const int kWakeupsUnsupported = -4054;  // UV_ENOSYS on Windows
#else
const int kWakeupsUnsupported = -ENOSYS;
#endif

int OpenWakeups(uv_loop_s*, void (*)(void*), void*, Wakeups**) { return kWakeupsUnsupported; }
int WatchSocket(Wakeups*, Sock, uint32_t) { return kWakeupsUnsupported; }
int UnwatchSocket(Wakeups*, Sock) { return kWakeupsUnsupported; }
int TakeWoken(Wakeups*, uint32_t*, int) { return 0; }
void CloseWakeups(Wakeups*, void (*closed)(void*), void* arg) { closed(arg); }

}  // namespace sl
