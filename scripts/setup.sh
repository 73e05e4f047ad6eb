#!/usr/bin/env bash
# Set-up on a fresh Debian machine, in one command (`npm run setup`): the system packages the
# tests drive for real, then `npm ci` (its install script builds the N-API clock shim) and the
# build of the wasm core and the host bundles. Needs root for apt-get; without it, it prints
# what to install and goes on.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the browser host's tests and the dashboard test (playwright-core drives /usr/bin/chromium,
#   never a download)
# spin: the model check of the shared-memory lease protocol
# etcd-server: the demo's and the etcd tests' real 3-member cluster (/usr/bin/etcd, started on loopback)
# iptables: the etcd fault tests cut one member's traffic (by uid, on 127.0.0.1)
# strace: the slow-disk fault (demo/cluster.ts slowDisk) delays an etcd member's syncs with its syscall fault injection
# gcc, libasan8, libubsan1: test/native-shim.test.ts builds the clock shim with AddressSanitizer and
#   UBSan, and test/native-suspend.test.ts builds its clock_gettime interposer (gcc also builds the shim)
APT_PACKAGES=(chromium spin etcd-server iptables strace gcc libasan8 libubsan1)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "lease-core setup: please install the Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  fi
fi

npm ci
# The build (wasm core, hosts, demo). Not a `prepare` script: npm 11 lists a dependency's
# prepare and install scripts for approval, and consumers of the package need only `install`.
node scripts/build.mjs --skip-native
