// Helpers shared by the two Windows files (socket_ops_win32.cc,
// socket_lookup_win32.cc); not part of the portable interface.
#pragma once

#include <winsock2.h>

namespace sl {

// Whether s is a listening socket (SO_ACCEPTCONN).
bool IsListening(SOCKET s);

}  // namespace sl
