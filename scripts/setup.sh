#!/usr/bin/env bash
# Installs what Tessera needs where it is missing, then builds it in release
# mode. Safe to run again: it installs nothing that is already there.
#
#   Open MPI 4.1 (mpirun, mpicc, headers)  apt: openmpi-bin libopenmpi-dev
#   libclang (rsmpi generates its bindings) apt: libclang-dev
#   pkg-config                              apt: pkg-config
#   g++ (builds the kernel emulator for tests) apt: g++
#   NVRTC (compiles the CUDA kernels; no GPU needed)
#       from a CUDA toolkit if present, else the PyPI wheel
#       nvidia-cuda-nvrtc-cu12, installed into .deps/nvrtc
#   Rust (cargo)                            https://rustup.rs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

missing=()
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
command -v mpicc >/dev/null 2>&1 || missing+=(libopenmpi-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
has_libclang() {
    # bindgen needs libclang and clang's own headers, which come with the -dev
    # package; the runtime library alone is not enough.
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}\n' libclang-dev 'libclang-*-dev' 2>/dev/null \
            | grep -q 'install ok installed'
    else
        ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1
    fi
}
has_libclang || missing+=(libclang-dev)

if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    if ! command -v apt-get >/dev/null 2>&1; then
        die "apt-get not found: install ${missing[*]} (Open MPI 4.1 and libclang) with your package manager, then run this again"
    fi
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        die "need root to install ${missing[*]}: run 'sudo apt-get install ${missing[*]}', or run this script as root"
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed: check the network and /etc/apt/sources.list"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
else
    say "Open MPI, libclang and pkg-config are installed"
fi

command -v mpirun >/dev/null 2>&1 || die "mpirun is still missing after the install"
say "$(mpirun --version 2>/dev/null | head -n1)"

# NVRTC: a CUDA toolkit's, or the wheel's (scripts export TESSERA_NVRTC_LIB
# to it; Tessera also finds it on LD_LIBRARY_PATH).
wheel_nvrtc=.deps/nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc.so.12
if [[ -n ${TESSERA_NVRTC_LIB:-} && -f ${TESSERA_NVRTC_LIB} ]]; then
    say "NVRTC: ${TESSERA_NVRTC_LIB}"
elif [[ -f /usr/local/cuda/lib64/libnvrtc.so.12 ]] || ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.12'; then
    say "NVRTC: from the CUDA toolkit"
elif [[ -f $wheel_nvrtc ]]; then
    say "NVRTC: $wheel_nvrtc"
else
    say "installing NVRTC (pip wheel nvidia-cuda-nvrtc-cu12) into .deps/nvrtc"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target .deps/nvrtc \
        'nvidia-cuda-nvrtc-cu12>=12.4,<13' 2>&1 | grep -v 'Running pip as the' >&2 || true
    [[ -f $wheel_nvrtc ]] || die "could not install NVRTC: run 'python3 -m pip install --target .deps/nvrtc nvidia-cuda-nvrtc-cu12' (needs pip and the network), or install the CUDA toolkit"
    say "NVRTC: $wheel_nvrtc"
fi

if ! command -v cargo >/dev/null 2>&1; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 \
    || die "cargo not found: install Rust 1.89 or newer (https://rustup.rs), then run this again"
say "$(cargo --version)"

say "building (release): the tessera binary and the examples"
cargo build --release --locked --bins --examples
say "built target/release/tessera"
