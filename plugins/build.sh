#!/usr/bin/env bash
# Builds magg's plugins into target/plugins/:
#
#   target/plugins/<name>.wasm            shipped plugins (plugins/rust/<name>/, ...)
#   target/plugins/fixtures/<name>.wasm   test plugins (tests/fixtures/plugins/<name>/)
#
# Run it from anywhere: `bash plugins/build.sh`. It fails on any build error or compiler
# warning, and says on stderr what it built.
#
# Rust plugins need `rustup target add wasm32-wasip2`. Both Rust workspaces build with
# `cargo build --target wasm32-wasip2 --release --target-dir target/wasm`, which makes
# components directly; a crate without `crate-type = ["cdylib"]` is a library (e.g.
# plugins/rust/sdk) and is not copied.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/plugins
TARGET=wasm32-wasip2
TARGET_DIR=target/wasm
# Built files are staged here and then moved into $OUT, so a running magg never loads a
# half-written plugin.
STAGE=target/plugins-build
mkdir -p "$OUT/fixtures" "$STAGE"

die() {
  echo "build.sh: $*" >&2
  exit 1
}

# Builds the cargo workspace at $1/Cargo.toml and copies each plugin crate's component
# (crates $1/$2/*) to $3/<crate directory name>.wasm.
build_rust() {
  local root=$1 crates=$2 out=$3
  local log
  log=$(mktemp)
  echo "build.sh: cargo build $root ($TARGET, release)" >&2
  if ! cargo build --manifest-path "$root/Cargo.toml" --locked --target "$TARGET" --release \
    --target-dir "$TARGET_DIR" 2>&1 | tee "$log" >&2; then
    rm -f "$log"
    die "cargo build of $root failed"
  fi
  # (Colour codes may come before the word when CARGO_TERM_COLOR=always.)
  if grep -Eq $'^(\e\\[[0-9;]*m)*warning' "$log"; then
    rm -f "$log"
    die "cargo build of $root printed warnings (see above); fix them"
  fi
  rm -f "$log"

  local dir name package wasm count=0
  for dir in "$root/$crates"/*/; do
    dir=${dir%/}
    [[ -f $dir/Cargo.toml ]] || continue
    grep -Eq '^crate-type *= *\[ *"cdylib" *\]' "$dir/Cargo.toml" || continue
    name=$(basename "$dir")
    package=$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$dir/Cargo.toml" | head -n 1)
    [[ -n $package ]] || die "no package name in $dir/Cargo.toml"
    wasm=$TARGET_DIR/$TARGET/release/${package//-/_}.wasm
    [[ -f $wasm ]] || die "$package built no component at $wasm"
    cp "$wasm" "$STAGE/$name.wasm"
    mv -f "$STAGE/$name.wasm" "$out/$name.wasm"
    printf 'build.sh: built %-48s %7s bytes\n' "$out/$name.wasm" "$(wc -c <"$out/$name.wasm" | tr -d ' ')" >&2
    count=$((count + 1))
  done
  ((count > 0)) || die "no plugin crates found in $root/$crates"
}

command -v cargo >/dev/null || die "cargo is not installed"
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
  die "the Rust target $TARGET is missing; run: rustup target add $TARGET"

# Rust plugins
build_rust plugins rust "$OUT"
# Rust test plugins
build_rust tests/fixtures/plugins . "$OUT/fixtures"

# Python and JavaScript plugins
plugins/build-py-js.sh
