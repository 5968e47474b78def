// Kernel wake-ups for sockets waiting on delivery (a lingering close, a
// shutdown sequence): where the kernel can say when a socket's state changed
// (its FIN acknowledged, a reset), the loop is woken for the sockets that
// changed instead of polling every one. Implemented where a platform has the
// path (wakeups_linux.cc: one epoll instance watched by the loop); elsewhere
// (wakeups_none.cc) OpenWakeups says -ENOSYS and the library polls.
#pragma once

#include <cstdint>

#include "socket_ops.h"

struct uv_loop_s;

namespace sl {

struct Wakeups;

// What OpenWakeups returns where there is no wake-up path (ENOSYS as libuv
// names it on this platform), and what the rest return without one open.
extern const int kWakeupsUnsupported;

// Starts watching on `loop` (never keeping it alive): `on_wake(arg)` runs on
// the loop's thread whenever some watched socket woke; TakeWoken says which.
int OpenWakeups(uv_loop_s* loop, void (*on_wake)(void* arg), void* arg, Wakeups** out);
// Watches `s` (edge-triggered: one wake-up per state change), named `token`.
// The first wake-up comes at once: what happened before is checked too.
int WatchSocket(Wakeups* w, Sock s, uint32_t token);
// Stops watching `s`; call it before `s` is closed (a duplicate of the
// descriptor would keep the registration alive otherwise).
int UnwatchSocket(Wakeups* w, Sock s);
// The tokens of sockets that woke since the last call, at most `capacity`:
// their count. More are left for the next wake-up of the loop.
int TakeWoken(Wakeups* w, uint32_t* tokens, int capacity);
// Stops; `closed(arg)` runs once the loop has let go of it (it is freed then).
void CloseWakeups(Wakeups* w, void (*closed)(void* arg), void* arg);

}  // namespace sl
