# Built by scripts/build-native.mjs with native/ as the working directory, so node-gyp's
# build/ lands in native/build/ and never touches the repo's build/ (the wasm output).
# It lives here, not at the root: a root binding.gyp makes npm run `node-gyp rebuild` on install
# by itself, with no fallback when there is no compiler.
{
  "targets": [
    {
      "target_name": "lease_clock",
      "sources": ["lease_clock.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=gnu11", "-Wall", "-Wextra"],
        "MACOSX_DEPLOYMENT_TARGET": "10.13"
      }
    }
  ]
}
