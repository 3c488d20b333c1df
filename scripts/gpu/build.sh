#!/bin/bash
# Builds what a run on a Linux machine with an NVIDIA GPU needs into .gpu/
# (git-ignored there; carry it): the minerva binary, the runtime/gpu test
# binary, and the models and fixtures the tests read. Run from the
# repository root on any machine with Go; no cgo, no CUDA toolkit.
set -e
mkdir -p .gpu
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -ldflags='-s -w' -o .gpu/minerva ./cmd/minerva
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -ldflags='-s -w' -o .gpu/gpu.test ./runtime/gpu
rm -rf .gpu/tree && mkdir -p .gpu/tree/runtime/gpu
cp -r models testdata .gpu/tree/ && cp -r runtime/gpu/testdata .gpu/tree/runtime/gpu/
cp scripts/gpu/*.sh scripts/gpu/*.py .gpu/
