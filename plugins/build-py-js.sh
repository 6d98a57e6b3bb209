#!/usr/bin/env bash
# Builds magg's Python and JavaScript plugins into target/plugins/<name>.wasm.
#
#   plugins/build-py-js.sh                 # every plugin below
#   plugins/build-py-js.sh redact          # just the named ones
#
# Tools (pinned; install once):
#   python3 -m pip install -r plugins/python/requirements.txt   # componentize-py
#   npm ci --prefix plugins/js --no-audit --no-fund             # componentize-js
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/plugins
WIT=wit
# Built here first, then moved into $OUT, so a running magg never loads a half-written file.
STAGE=target/plugins-build
mkdir -p "$OUT" "$STAGE"

# name  kind  folder  world
PLUGINS=(
  "redact            py plugins/python/redact          routing-hook-plugin"
  "describe-servers  js plugins/js/describe-servers    tool-filter-plugin"
  "calc              py plugins/python/calc            tool-provider-plugin"
  "text-tools        js plugins/js/text-tools          tool-provider-plugin"
)

componentize_py() {
  if command -v componentize-py >/dev/null 2>&1; then
    componentize-py "$@"
  elif python3 -c 'import componentize_py' >/dev/null 2>&1; then
    python3 -c 'import sys, componentize_py; sys.argv[0] = "componentize-py"; componentize_py.script()' "$@"
  else
    echo "build-py-js.sh: componentize-py is not installed; run:" >&2
    echo "  python3 -m pip install -r plugins/python/requirements.txt" >&2
    exit 1
  fi
}

COMPONENTIZE_JS=plugins/js/node_modules/.bin/componentize-js
check_js() {
  if [[ ! -x $COMPONENTIZE_JS ]]; then
    echo "build-py-js.sh: componentize-js is not installed; run:" >&2
    echo "  npm ci --prefix plugins/js --no-audit --no-fund" >&2
    exit 1
  fi
}

build() {
  local name=$1 kind=$2 dir=$3 world=$4
  local staged=$STAGE/$name.wasm start=$SECONDS
  rm -f "$staged"
  case $kind in
    py)
      # --stub-wasi: WASI imports become trapping stubs, so the component imports nothing
      # but magg:plugin (a plugin gets no files, env, clocks or network anyway).
      componentize_py -q -d "$WIT" -w "$world" componentize --stub-wasi -p "$dir" app -o "$staged"
      # componentize-py compiles app.py in place; keep the source tree clean.
      rm -rf "$dir/__pycache__"
      ;;
    js)
      check_js
      # -d turns off every WASI feature of the engine: the component imports no WASI at all.
      "$COMPONENTIZE_JS" "$dir/app.js" --wit "$WIT" -n "$world" \
        -d stdio random clocks http fetch-event -o "$staged" >/dev/null
      ;;
  esac
  mv -f "$staged" "$OUT/$name.wasm"
  printf '%-18s %s (%s bytes, %ss)\n' "$name" "$OUT/$name.wasm" \
    "$(wc -c <"$OUT/$name.wasm" | tr -d ' ')" "$((SECONDS - start))"
}

names=()
for row in "${PLUGINS[@]}"; do
  read -r name _ <<<"$row"
  names+=("$name")
done
for w in "$@"; do
  if [[ " ${names[*]} " != *" $w "* ]]; then
    echo "build-py-js.sh: unknown plugin '$w' (known: ${names[*]})" >&2
    exit 1
  fi
done

for row in "${PLUGINS[@]}"; do
  read -r name kind dir world <<<"$row"
  if (($#)) && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  build "$name" "$kind" "$dir" "$world"
done
