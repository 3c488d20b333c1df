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
binaries="minerva gpu.test"
# MINERVA_GPU_LEAN=1 leaves out engine.test and cpu.test (14 MB of the
# 64 MiB a call carries), which only main's correctness suite
# (correctness.sh) and the batching runs use: room for more variants in a
# call that sets MINERVA_GPU_SKIP_CORRECTNESS=1.
if [ "${MINERVA_GPU_LEAN:-0}" != 1 ]; then
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -ldflags='-s -w' -o .gpu/engine.test ./runtime/engine
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -ldflags='-s -w' -o .gpu/cpu.test ./runtime/cpu
  binaries="$binaries engine.test cpu.test"
fi
# MINERVA_GPU_BASE=COMMIT also builds that commit's runtime/gpu tests as
# gpu-base.test, so compare.sh can time the old kernels beside the new on
# the same GPU in the same run: it is the variant named base.
# MINERVA_GPU_VARIANTS="NAME=REV ..." builds each REV's runtime/gpu tests
# as gpu-NAME.test, for compare.sh to time beside the others: every
# candidate kernel change in one device call. REV is a commit, a branch,
# or a patch file (scripts/gpu/candidates/*.patch) applied to HEAD.
for v in ${MINERVA_GPU_BASE:+base=$MINERVA_GPU_BASE} ${MINERVA_GPU_VARIANTS:-}; do
  name=${v%%=*} rev=${v#*=}
  wt=$(mktemp -d)
  case "$rev" in
    *.patch) patch=$(realpath "$rev"); git worktree add -q --detach "$wt" HEAD
      (cd "$wt" && git apply "$patch") || { git worktree remove --force "$wt"; echo "build.sh: $rev does not apply to HEAD; regenerate it from its branch" >&2; exit 1; } ;;
    *) git worktree add -q --detach "$wt" "$rev" ;;
  esac
  (cd "$wt" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go test -c -ldflags='-s -w' -o "$OLDPWD/.gpu/gpu-$name.test" ./runtime/gpu)
  git worktree remove --force "$wt"
  binaries="$binaries gpu-$name.test"
done
# The device's copy of the working tree is limited in size, so the
# binaries travel compressed; unpack.sh opens them there. The tests run in
# the tree itself (they find its root by go.mod).
rm -rf .gpu/tree
cp scripts/gpu/*.sh scripts/gpu/*.py .gpu/
(cd .gpu && tar czf bin.tgz $binaries && rm $binaries)
