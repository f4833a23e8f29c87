#!/usr/bin/env bash
# Installs the Debian packages the build needs, only when their headers are missing.
# Called by `make` before anything is compiled (target `deps`); safe to run by hand.
#   dev/install_deps.sh        the build's packages
#   dev/install_deps.sh plot   only python3-matplotlib for dev/plot_run.py (Debian's /usr/bin/python3)
set -u
need=()
apt_flags=()
if [ "${1:-}" = plot ]; then
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
  apt_flags=(--no-install-recommends)
else
[ -f /usr/include/nlohmann/json.hpp ]                              || need+=(nlohmann-json3-dev)
[ -f /usr/include/zlib.h ]                                         || need+=(zlib1g-dev)
[ -f /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h ]      || need+=(libopenblas-openmp-dev)
[ -f /usr/include/boost/context/fiber.hpp ]                        || need+=(libboost-context-dev)
command -v python3 >/dev/null                                      || need+=(python3)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "install_deps: missing ${need[*]}; installing with apt-get" >&2
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo; command -v sudo >/dev/null || {
    echo "install_deps: not root and no sudo. Please run: apt-get install ${need[*]}" >&2; exit 1; }
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq "${apt_flags[@]}" "${need[@]}" >/dev/null; then
  echo "install_deps: apt-get install ${need[*]} failed; install them by hand and rerun make" >&2
  exit 1
fi
