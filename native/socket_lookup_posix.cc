// On POSIX Node exposes the descriptor (handle.fd), so there is nothing to
// look up: the TypeScript side never calls FindSocket here.
#include "socket_lookup.h"

namespace sl {

int FindSocket(uv_loop_s*, const Endpoint&, const Endpoint&, Sock*) {
  return kLookupUnsupported;
}

}  // namespace sl
