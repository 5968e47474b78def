// Linux wake-ups: one epoll instance for every waiting socket, registered
// edge-triggered, and the loop watching the epoll descriptor (a uv_poll_t).
// Linux wakes a socket's waiters when its FIN is acknowledged (FIN_WAIT1 ->
// FIN_WAIT2 and LAST_ACK -> CLOSED call sk_state_change) and when it is
// reset; after shutdown(SHUT_WR) tcp_poll always reports EPOLLOUT, so each
// such wake-up is an edge here, and nothing happens while nothing changes.
#include "wakeups.h"

#include <cerrno>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

namespace sl {

struct Wakeups {
  uv_poll_t poll;
  int epoll_fd;
  void (*on_wake)(void*);
  void* arg;
  void (*closed)(void*);
  void* closed_arg;
};

namespace {

void OnReadable(uv_poll_t* poll, int, int) {
  auto* w = static_cast<Wakeups*>(poll->data);
  w->on_wake(w->arg);
}

void OnClosed(uv_handle_t* handle) {
  auto* w = static_cast<Wakeups*>(handle->data);
  close(w->epoll_fd);  // drops every registration left
  w->closed(w->closed_arg);
  delete w;
}

}  // namespace

const int kWakeupsUnsupported = -ENOSYS;

int OpenWakeups(uv_loop_s* loop, void (*on_wake)(void*), void* arg, Wakeups** out) {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return -errno;
  auto* w = new Wakeups{};
  w->epoll_fd = epoll_fd;
  w->on_wake = on_wake;
  w->arg = arg;
  int err = uv_poll_init(loop, &w->poll, epoll_fd);
  if (err == 0) {
    w->poll.data = w;
    err = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
    if (err != 0) {
      // Initialised: libuv must let go of it before the memory goes.
      w->closed = [](void*) {};
      uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
      return err;
    }
    uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
    *out = w;
    return 0;
  }
  close(epoll_fd);
  delete w;
  return err;
}

int WatchSocket(Wakeups* w, Sock s, uint32_t token) {
  struct epoll_event event = {};
  event.events = EPOLLOUT | EPOLLET | EPOLLRDHUP;
  event.data.u64 = token;
  if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, static_cast<int>(s), &event) != 0) return -errno;
  return 0;
}

int UnwatchSocket(Wakeups* w, Sock s) {
  struct epoll_event unused = {};  // kernels before 2.6.9 want one
  if (epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, static_cast<int>(s), &unused) != 0) return -errno;
  return 0;
}

int TakeWoken(Wakeups* w, uint32_t* tokens, int capacity) {
  constexpr int kBatch = 256;
  struct epoll_event events[kBatch];
  int taken = 0;
  while (taken < capacity) {
    int want = capacity - taken < kBatch ? capacity - taken : kBatch;
    int n = epoll_wait(w->epoll_fd, events, want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (int i = 0; i < n; i++) tokens[taken++] = static_cast<uint32_t>(events[i].data.u64);
    if (n < want) break;
  }
  return taken;
}

void CloseWakeups(Wakeups* w, void (*closed)(void*), void* arg) {
  w->closed = closed;
  w->closed_arg = arg;
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

}  // namespace sl
