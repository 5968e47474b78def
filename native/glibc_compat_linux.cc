// Keeps the Linux prebuilds loadable on old glibc (the goal: 2.28, Debian 10
// / RHEL 8) although they are built on a newer one (Debian 12: glibc 2.36).
//
// libstdc++ is linked statically (binding.gyp), so no GLIBCXX_* version is
// needed at run time, but the libstdc++.a objects that std::string drags in
// (functexcept -> stdexcept -> cow-string-inst -> random) were compiled
// against glibc 2.36 and reference two symbols that older glibc lacks:
//
//  - __libc_single_threaded (GLIBC_2.32): libstdc++'s "may I skip the atomic
//    reference count" flag. Defined here, hidden, as 0 ("maybe threaded"):
//    every reference in this module binds to it at link time and always takes
//    the atomic path, which is correct with any number of threads.
//  - arc4random (GLIBC_2.36): only std::random_device("arc4random") calls it,
//    which this addon never does. The link maps it here with
//    -Wl,--wrap=arc4random; the replacement reads getrandom() (GLIBC_2.25).
//
// The unwinder is taken from the shared libgcc_s.so.1 (every Node binary
// needs it too) rather than the static libgcc_eh.a, whose Debian 12 build
// calls _dl_find_object (GLIBC_2.35) and pthread_once (GLIBC_2.34).
// scripts/check-glibc.sh verifies the result with objdump -T.
#include <cstdint>
#include <cstdlib>
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define SL_HAVE_GETRANDOM 1
#endif

extern "C" {

__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

__attribute__((visibility("hidden"))) uint32_t __wrap_arc4random(void) {
#ifdef SL_HAVE_GETRANDOM
  uint32_t value;
  if (getrandom(&value, sizeof value, 0) == static_cast<ssize_t>(sizeof value)) return value;
#endif
  abort();  // unreachable in practice: nothing here uses std::random_device
}

}  // extern "C"
