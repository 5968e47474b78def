// The TCPS_* values of tcp_connection_info.tcpi_state. The macOS SDK has
// them in <netinet/tcp_fsm.h>; the macOS headers Zig bundles (used by the
// compile check, scripts/check-darwin.sh) lack that file, so the values are
// spelled out here then. They are the BSD state numbers of XNU's
// bsd/netinet/tcp_fsm.h (RFC 793 order), unchanged since 4.4BSD.
#pragma once

#if __has_include(<netinet/tcp_fsm.h>)
#include <netinet/tcp_fsm.h>
#else
#define TCPS_CLOSED 0
#define TCPS_LISTEN 1
#define TCPS_SYN_SENT 2
#define TCPS_SYN_RECEIVED 3
#define TCPS_ESTABLISHED 4
#define TCPS_CLOSE_WAIT 5
#define TCPS_FIN_WAIT_1 6
#define TCPS_CLOSING 7
#define TCPS_LAST_ACK 8
#define TCPS_FIN_WAIT_2 9
#define TCPS_TIME_WAIT 10
#endif
