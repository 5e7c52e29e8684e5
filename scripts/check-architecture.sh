#!/usr/bin/env bash
# Checks the invariants ARCHITECTURE.md states, so that it stays true:
#   1. layers: a library module imports only modules below it (no cycles);
#   2. only src/device/ names cudarc; only src/comm/ names rsmpi (`mpi::`);
#      `unsafe` appears in the library only under src/comm/ and src/device/;
#      src/device/backend.rs does not name the CUDA backend;
#   3. every TESSERA_* variable is read through src/env.rs, which lists them all;
#   4. ARCHITECTURE.md names every top-level module of the library;
#   5. the library is lean: a crate that depends on it (tests/user_crate)
#      compiles none of the tool's dependencies, and runs under mpirun;
#   6. the documentation (library and tool) builds without a warning.
# Reports every broken invariant, naming the file and line, and exits
# non-zero if there is any.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=0
fail() { printf 'check-architecture: %s\n' "$*" >&2; failures=$((failures + 1)); }
say() { printf 'check-architecture: %s\n' "$*"; }

# Code lines only: comments and doc comments (which may link anywhere) are
# dropped, and so is a file's unit-test module (`mod tests`, which by the
# convention of this code base is the last item of a file: tests may use
# what they like).
code() {
    awk 'FNR == 1 { skip = 0 } /^(pub(\(crate\))? )?mod tests\b/ { skip = 1 } !skip { sub(/^[ \t]*\/\/.*$/, ""); print FILENAME ":" FNR ":" $0 }' "$@"
}

# 1. Layers, bottom to top. A module may import its own items and those of
# modules strictly below it.
layer_of() {
    case $1 in
        error | env | choice | rng) echo 0 ;;
        trace) echo 1 ;;
        device) echo 2 ;;
        comm) echo 3 ;;
        ops) echo 4 ;;
        distributed) echo 5 ;;
        npy) echo 6 ;;
        # Items the crate root re-exports, by the module that defines them.
        Comm | Universe | spmd) echo 3 ;;
        Device) echo 2 ;;
        *) echo "" ;;
    esac
}
for path in src/*; do
    name=$(basename "$path" .rs)
    [[ $name == lib ]] && continue
    mine=$(layer_of "$name")
    if [[ -z $mine ]]; then
        fail "src/$name has no layer: add it to layer_of in scripts/check-architecture.sh and to ARCHITECTURE.md"
        continue
    fi
    files=$( [[ -d $path ]] && find "$path" -name '*.rs' || echo "$path")
    # shellcheck disable=SC2086
    while IFS= read -r hit; do
        used=$(grep -oE 'crate::[A-Za-z_]+' <<<"${hit#*:*:}" | sed 's/crate:://' | sort -u)
        for u in $used; do
            [[ $u == "$name" ]] && continue
            theirs=$(layer_of "$u")
            [[ -z $theirs ]] && continue # Error and Result, at the crate root
            if ((theirs >= mine)); then
                fail "${hit%%:*}:$(cut -d: -f2 <<<"$hit"): $name (layer $mine) imports $u (layer $theirs): imports point down only"
            fi
        done
    done < <(code $files | grep -E 'crate::[A-Za-z_]+' || true)
done

while IFS= read -r hit; do
    fail "$hit: write one \`use crate::module::...\` per module, so that the layer check sees each import"
done < <(code $(find src -name '*.rs') | grep -F 'crate::{' | cut -d: -f1,2 || true)

# 2. Where FFI and unsafe live.
outside() { # PATTERN DIR-ALLOWED WHAT
    while IFS= read -r hit; do
        fail "$hit: $3"
    done < <(code $(find src -name '*.rs' ! -path "$2/*") | grep -E "$1" | cut -d: -f1,2 || true)
}
outside '\bcudarc\b' src/device "only src/device/ names cudarc"
outside '\bmpi::|\buse mpi\b|\bextern crate mpi\b' src/comm "only src/comm/ names rsmpi and MPI's C interface"
while IFS= read -r hit; do
    fail "$hit: unsafe code lives under src/comm/ and src/device/ only"
done < <(code $(find src -name '*.rs' ! -path 'src/comm/*' ! -path 'src/device/*') | grep -E '\bunsafe\b' | cut -d: -f1,2 || true)
if code src/device/backend.rs | grep -qE '\b(cuda|emulated)\b'; then
    fail "src/device/backend.rs names a backend (cuda, emulated): the trait must not know its implementations"
fi

# 3. Environment variables: read through src/env.rs, all listed there.
while IFS= read -r hit; do
    fail "$hit: name the variable through its constant in src/env.rs"
done < <(code $(find src tool/src tests tool/tests examples benches -name '*.rs' ! -path src/env.rs) \
    | grep -E '"TESSERA_[A-Z][A-Z_]*"' | cut -d: -f1,2 || true)
for var in $(grep -rhoE 'TESSERA_[A-Z][A-Z_]*[A-Z]' --include='*.rs' --include='*.sh' --include='*.md' \
    src tool tests benches examples scripts README.md | sort -u); do
    grep -q "\"$var\"" src/env.rs || fail "$var is used but not listed in src/env.rs"
done

# 4. ARCHITECTURE.md names every module of the library, and its layer
# diagram lists the layers in the order this script checks.
diagram=$(awk '/^## Layers of the library/ { on = 1 } /^## Code map/ { on = 0 } on' ARCHITECTURE.md \
    | grep -oE '^ ([a-z]+)' | tr -d ' ')
previous=99
for name in $diagram; do
    rank=$(layer_of "$name")
    [[ -z $rank ]] && continue
    ((rank <= previous)) || fail "ARCHITECTURE.md's layer diagram puts $name above a layer this script ranks higher: make the two agree"
    previous=$rank
done
for path in src/*; do
    name=$(basename "$path" .rs)
    [[ $name == lib ]] && continue
    grep -q "src/$name" ARCHITECTURE.md || fail "ARCHITECTURE.md does not describe src/$name"
done

# 5. What a user compiles, and a user's program under mpirun.
tree=$(cargo tree --locked -p tessera-user-crate -e normal --prefix none)
for forbidden in clap indicatif plotters roxmltree proptest criterion; do
    if grep -qE "^$forbidden(_[a-z]+)? " <<<"$tree"; then
        fail "a crate that depends on the library compiles $forbidden: keep it in the tool (tool/Cargo.toml)"
    fi
done
crates=$(sort -u <<<"$tree" | wc -l)
say "a crate that depends on the library has $crates packages in its dependency tree (cargo tree -p tessera-user-crate -e normal)"
cargo build --locked -q -p tessera-user-crate
out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
    timeout 120 mpirun -n 3 "${CARGO_TARGET_DIR:-target}"/debug/tessera-user-crate 40 2>&1) || fail "the user crate failed under mpirun -n 3: $out"
grep -q "user crate on 3 ranks" <<<"$out" || fail "the user crate printed no result: $out"

# 6. Documentation without warnings (the library's, and the tool's library).
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -q -p tessera -p tessera-cli \
    || fail "the documentation has warnings (run: RUSTDOCFLAGS='-D warnings' cargo doc --no-deps -p tessera -p tessera-cli)"

if ((failures)); then
    printf 'check-architecture: %d invariant(s) broken\n' "$failures" >&2
    exit 1
fi
say "layers, FFI and unsafe boundaries, environment variables, lean library and docs: all hold"
