{
  "targets": [
    {
      "target_name": "socket_linger",
      "sources": ["native/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "conditions": [
        ["OS=='win'", {
          "sources": ["native/socket_ops_win32.cc", "native/socket_lookup_win32.cc"],
          "libraries": ["-lws2_32", "-liphlpapi"],
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/std:c++17"]}}
        }],
        ["OS!='win'", {
          "sources": ["native/socket_ops_posix.cc", "native/socket_lookup_posix.cc"]
        }],
        ["OS!='linux'", {
          "sources": ["native/wakeups_none.cc"]
        }],
        ["OS=='linux'", {
          "sources": ["native/tcp_info_linux.cc", "native/glibc_compat_linux.cc", "native/wakeups_linux.cc"],
          "ldflags": ["-static-libstdc++", "-shared-libgcc", "-Wl,--wrap=arc4random"]
        }],
        ["OS=='mac'", {
          "sources": ["native/tcp_info_darwin.cc"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "10.15"
          }
        }]
      ]
    }
  ]
}
