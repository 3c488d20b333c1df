#!/bin/bash
# On the GPU machine, from the repository root, after scripts/gpu/build.sh:
# issue 14's concurrency benchmark through the CUDA backend: 1 to 16
# concurrent greedy streams through one Batcher, on fortune, then (when
# MINERVA_BENCH_MODEL names it, as bench.sh's /tmp/g20) the synthetic
# gpt-oss-20b.
R=$(pwd); G=$R/.gpu
[ -x $G/minerva ] || (cd $G && tar xzf bin.tgz)
OUT=${OUT:-/tmp/minerva-gpu}; mkdir -p $OUT
cd $R/runtime/engine
MINERVA_BENCH_BACKEND=cuda MINERVA_BENCH_MODEL= $G/engine.test -test.run '^$' -test.bench BatcherStreams -test.benchtime 4x -test.v 2>&1 | tee $OUT/batch_fortune.log | grep -vE "^(goos|goarch|pkg|cpu)"
if [ -n "$MINERVA_BENCH_MODEL" ]; then
  MINERVA_BENCH_BACKEND=cuda MINERVA_BENCH_PROMPT=${MINERVA_BENCH_PROMPT:-64} MINERVA_BENCH_GEN=${MINERVA_BENCH_GEN:-64} $G/engine.test -test.run '^$' -test.bench BatcherStreams -test.benchtime 2x -test.timeout 20m -test.v 2>&1 | tee $OUT/batch_20b.log | grep -vE "^(goos|goarch|pkg|cpu)"
fi
