#!/bin/bash
# Builds what a run on a Linux machine with an NVIDIA GPU needs into .gpu/
# (git-ignored there; carry it): the minerva binary, the runtime/gpu test
# binary, and the models and fixtures the tests read. Run from the
# repository root on any machine with Go; no cgo, no CUDA toolkit.
set -e
export GOTOOLCHAIN=go1.27.3 # go.mod names Go 1.27.3
mkdir -p .gpu
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -ldflags='-s -w' -o .gpu/minerva ./cmd/minerva
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -ldflags='-s -w' -o .gpu/gpu.test ./runtime/gpu
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -ldflags='-s -w' -o .gpu/engine.test ./runtime/engine
# The device's copy of the working tree is limited in size, so the
# binaries travel compressed; unpack.sh opens them there. The tests run in
# the tree itself (they find its root by go.mod).
rm -rf .gpu/tree
cp scripts/gpu/*.sh scripts/gpu/*.py .gpu/
(cd .gpu && tar czf bin.tgz minerva gpu.test engine.test && rm minerva gpu.test engine.test)
