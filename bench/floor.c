/* The floor for the per-call benchmark: the same syscalls in a tight C loop
 * on a connected loopback socket. Prints JSON: nanoseconds per call. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define LOOPS 1000000

int main(void) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listener, (struct sockaddr *)&addr, sizeof addr);
  listen(listener, 1);
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr *)&addr, &len);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;

  struct linger lg = {1, 5};
  int one = 1;
  struct tcp_info info;
  double t0 = now_ns();
  for (int i = 0; i < LOOPS; i++) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  double t1 = now_ns();
  for (int i = 0; i < LOOPS; i++) { socklen_t l = sizeof lg; getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &l); }
  double t2 = now_ns();
  for (int i = 0; i < LOOPS; i++) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double t3 = now_ns();
  for (int i = 0; i < LOOPS; i++) { socklen_t l = sizeof info; getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &l); }
  double t4 = now_ns();
  printf("{\"setsockopt_SO_LINGER\":%.1f,\"getsockopt_SO_LINGER\":%.1f,\"setsockopt_TCP_NODELAY\":%.1f,\"getsockopt_TCP_INFO\":%.1f}\n",
         (t1 - t0) / LOOPS, (t2 - t1) / LOOPS, (t3 - t2) / LOOPS, (t4 - t3) / LOOPS);
  close(fd);
  close(listener);
  return 0;
}
