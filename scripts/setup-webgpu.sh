#!/usr/bin/env bash
# Makes sure Node can get a WebGPU adapter through Dawn (npm package `webgpu`). Runs from this
# repository (`npm run setup`, `npm test`) or from a project that installed densenet-webgpu
# (`bash node_modules/densenet-webgpu/scripts/setup-webgpu.sh`).
# 0. If Node cannot load `webgpu` (resolved as Node does, so a hoisted copy counts), say how to install it.
# 1. If an adapter is found, do nothing: a machine with a working GPU is never touched.
# 2. Otherwise, on Debian 12 as root: install the software Vulkan driver (Mesa lavapipe) from
#    bookworm-backports (Mesa 25; Debian 12's own Mesa 22 is refused by Dawn), then check again.
# 3. Otherwise print exactly what the user must install.
set -uo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

probe() { node scripts/probe-adapter.mjs; }

node scripts/probe-adapter.mjs --package || exit 2
if probe 2>/dev/null; then exit 0; fi

need="libvulkan1 and mesa-vulkan-drivers (Mesa >= 25, with the lavapipe software Vulkan driver)"
. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" != "debian" ] || [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "setup-webgpu: no WebGPU adapter, and this is not Debian 12, so nothing is installed automatically." >&2
  echo "  Install a Vulkan driver for your GPU, or for a machine without one: $need" >&2
  echo "  from your distribution, then run this again." >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-webgpu: no WebGPU adapter. As root, run:" >&2
  echo "  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list" >&2
  echo "  apt-get update && apt-get install -y -t bookworm-backports libvulkan1 mesa-vulkan-drivers" >&2
  exit 1
fi

echo "setup-webgpu: no WebGPU adapter found; installing Mesa's software Vulkan driver (lavapipe)"
echo "setup-webgpu: from bookworm-backports: libvulkan1 mesa-vulkan-drivers"
list=/etc/apt/sources.list.d/bookworm-backports.list
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup-webgpu: adding $list"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$list"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "setup-webgpu: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq -t bookworm-backports libvulkan1 mesa-vulkan-drivers >/dev/null \
  || { echo "setup-webgpu: apt-get install failed; install $need by hand" >&2; exit 1; }
echo "setup-webgpu: installed $(dpkg-query -W -f='mesa-vulkan-drivers ${Version}' mesa-vulkan-drivers)"
if probe; then exit 0; fi
echo "setup-webgpu: still no WebGPU adapter after installing $need" >&2
exit 1
