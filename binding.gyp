{
  "targets": [
    {
      "target_name": "xcontainer",
      "sources": ["<!@(ls -1 native/addon/*.cc)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/init"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "xcontainer-init",
      "type": "executable",
      "sources": ["<!@(ls -1 native/init/*.c)"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2", "-fno-strict-aliasing"],
      "cflags!": ["-fno-exceptions"],
      "ldflags": ["-static"]
    }
  ]
}
