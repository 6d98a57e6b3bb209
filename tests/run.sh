#!/usr/bin/env bash
# Sets up and runs every test of magg, from anywhere: `bash tests/run.sh`.
#
# It installs what the tests need (the wasm32-wasip2 Rust target, the npm backends and the MCP
# conformance suite, the official MCP Python SDK, the Python and JavaScript plugin toolchains),
# builds every plugin to WebAssembly and the workspace, then runs the unit and end-to-end tests
# and the plugins' own tests. It stops at the first step that fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rustup target add wasm32-wasip2 x86_64-unknown-linux-musl
# Debian's HAProxy (the replica tests), podman (the container image) and musl-gcc (the static
# binary), installed when run as root; without them, the tests that need them say so and pass.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v podman >/dev/null || missing+=(podman)
  command -v musl-gcc >/dev/null || missing+=(musl-tools)
  if [ ${#missing[@]} -gt 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
      || echo "run.sh: could not install ${missing[*]}; the tests that need them are skipped" >&2
  fi
fi
npm ci --prefix tests/node --no-audit --no-fund
npm ci --prefix tests/conformance --no-audit --no-fund
npm ci --prefix plugins/js --no-audit --no-fund
python3 -m pip install -q -r tests/python/requirements.txt -r plugins/python/requirements.txt
# The MCP Python SDK 1.x (protocol 2025-11-25), a client of the session era, beside the 2.x above.
[ -x target/mcp1-py/bin/python ] || {
  python3 -m venv target/mcp1-py && target/mcp1-py/bin/pip install -q mcp==1.30.0
}
# Magg 1.3 itself (it needs Python >= 3.12) for the token compatibility test, where such a
# Python is installed; without it PyJWT (above) stands in for Magg.
for python in python3.13 python3.12 "$(pyenv root 2>/dev/null)"/versions/3.1[23]*/bin/python3; do
  if "$python" -c 'import sys, venv; assert sys.version_info >= (3, 12)' 2>/dev/null; then
    [ -x target/magg-py/bin/magg ] || {
      "$python" -m venv target/magg-py && target/magg-py/bin/pip install -q magg==1.3.0
    } || echo "run.sh: Magg 1.3 could not be installed; its token test uses PyJWT instead" >&2
    break
  fi
done
bash plugins/build.sh
cargo build --workspace --locked
# The static magg of the container image (deploy/ and the Containerfile's tests run it).
if command -v musl-gcc >/dev/null; then
  cargo build --release --locked -p magg --target x86_64-unknown-linux-musl
fi
cargo test --workspace --locked
# The static magg through the tests of serving HTTP, health, metrics, shutdown and replicas.
if [ -x target/x86_64-unknown-linux-musl/release/magg ]; then
  MAGG_TEST_BIN="$PWD/target/x86_64-unknown-linux-musl/release/magg" \
    cargo test --locked -p magg-tests --test e2e -- http:: health:: metrics:: shutdown:: replicas::
fi
cargo test --manifest-path plugins/Cargo.toml --target-dir target/wasm --locked
