#!/usr/bin/env bash
# Installs llama.cpp's CPU build for the llama.cpp oracle test
# (runtime/gguf TestLlamaCppOracle) and scripts/bench-peer.sh: the npm
# package node-llama-cpp, pinned at 3.21.1, with its prebuilt
# @node-llama-cpp/linux-x64 binding only (--omit=optional leaves out the
# CUDA and Vulkan builds: 83 MB instead of 730). It ships the Node binding
# (llama-addon.node and the libggml-cpu-* variants), no llama-cli or
# llama-server, so scripts/llama-oracle.mjs drives it from Node.
# Everything goes into .llama/ (git-ignored). Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "install-llama.sh: the pinned prebuilt binding is for Linux x86-64 only" >&2
  exit 1
fi
mkdir -p .llama
cp scripts/llama/package.json scripts/llama/package-lock.json .llama/
cd .llama
npm ci --no-audit --no-fund --ignore-scripts --omit=optional
node -e 'import("node-llama-cpp").then(() => console.log("node-llama-cpp", require("./node_modules/node-llama-cpp/package.json").version, "installed in .llama/"))'
