#!/usr/bin/env bash
# dev/gpu_deps.sh: the Debian -dev packages the GPU build needs, for a GPU machine that has the CUDA
# toolkit but no apt and no network (the machine dev/gpu_check.sh runs on).
#   dev/gpu_deps.sh download   here (apt works): fetch the .deb files into build/gpu-deps/debs/
#                               (git-ignored, 6 MB; carry build/gpu-deps/debs with the working tree)
#   dev/gpu_deps.sh unpack     there: dpkg -x every .deb into build/gpu-deps/root/ (never into /)
#                               and print the environment that points compilers at it
#   source <(dev/gpu_deps.sh env)   the same environment lines, for the current shell
# Packages: nlohmann-json3-dev (header-only JSON: model interop), zlib1g-dev (gzip input of
# data/prepare_dpo), libopenblas-openmp-dev (only its cblas.h: the kernel tests include the CPU
# reference cpu/*.h, whose float BLAS overloads they never call). The GPU trainer itself needs
# neither BLAS nor OpenMP.
set -eu
cd "$(dirname "$0")/.."
DIR=build/gpu-deps
PACKAGES="nlohmann-json3-dev zlib1g-dev libopenblas-openmp-dev"
case "${1:-}" in
  download)
    mkdir -p "$DIR/debs"
    (cd "$DIR/debs" && apt-get download $PACKAGES 2>/dev/null) || {
      apt-get update -qq >/dev/null 2>&1 || true
      (cd "$DIR/debs" && apt-get download $PACKAGES)
    }
    ls -l "$DIR/debs"
    ;;
  unpack)
    ls "$DIR"/debs/*.deb > /dev/null 2>&1 || { echo "gpu_deps: no .deb in $DIR/debs; run 'dev/gpu_deps.sh download' where apt works and carry build/gpu-deps" >&2; exit 1; }
    mkdir -p "$DIR/root"
    for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
    # links that point out of the prefix (libz.so -> /lib/.../libz.so.1.2.13) may dangle on that
    # machine: drop them, so the linker takes the static libz.a beside them
    find "$DIR/root" -type l -lname '/*' -delete
    "$0" env
    ;;
  env)
    root="$(pwd)/$DIR/root"
    echo "export CPATH=$root/usr/include:$root/usr/include/x86_64-linux-gnu/openblas-openmp\${CPATH:+:\$CPATH}"
    echo "export LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
    ;;
  *) echo "usage: dev/gpu_deps.sh download|unpack|env" >&2; exit 2 ;;
esac
