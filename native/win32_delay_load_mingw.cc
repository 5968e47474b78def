// Only for the mingw-w64 cross build (scripts/build-win32.sh); MSVC builds
// through node-gyp get node-gyp's own hook (win_delay_load_hook) instead, so
// binding.gyp does not list this file.
//
// How the addon reaches Node-API and libuv: the import library it is linked
// with is a *delay-load* library for "node.exe" (dlltool -y), so nothing is
// bound when Windows loads the .node file. On the first call of each napi_* /
// uv_* function, mingw's __delayLoadHelper2 asks this hook before it loads
// "node.exe"; the hook answers with the module of the running executable
// (GetModuleHandle(NULL)), and the helper resolves every entry point with
// GetProcAddress on it. So the addon binds to whatever process loaded it —
// node.exe, a renamed node (my-app.exe), or another host exporting
// Node-API — and never loads a second copy of node.exe from disk.
//
// Chosen over a hand-written table of GetProcAddress'd function pointers
// because node-addon-api calls Node-API functions directly by name: the
// delay-load thunks keep that working unchanged.
#include <windows.h>
#include <delayimp.h>

namespace {

FARPROC WINAPI BindToHostProcess(unsigned notification, PDelayLoadInfo info) {
  if (notification != dliNotePreLoadLibrary || info == nullptr ||
      info->szDll == nullptr || lstrcmpiA(info->szDll, "node.exe") != 0)
    return nullptr;  // let the helper do what it would do anyway
  return reinterpret_cast<FARPROC>(GetModuleHandleW(nullptr));
}

}  // namespace

// Read by mingw-w64's __delayLoadHelper2 (libmingwex) before each library load.
extern "C" {
PfnDliHook __pfnDliNotifyHook2 = BindToHostProcess;
}
