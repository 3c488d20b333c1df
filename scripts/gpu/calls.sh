#!/bin/bash
# On the GPU machine, from the repository root, after
# `MINERVA_GPU_BASE=COMMIT scripts/gpu/build.sh` here (or with
# MINERVA_GPU_VARIANTS): calls of a few tokens on the synthetic
# gpt-oss-20b (what a batched step of that many sequences runs), each
# build's kernels in turn (gpu-base, the variants, then this tree's),
# each with its per-kernel table; then issue 14's batching through CUDA
# (batch.sh, fortune and the 20b) and this tree's correctness tests. The
# timing binary must be of this tree or later (MINERVA_CUDA_BENCH_CALLS).
# CALLS=2,8,512 chooses the call sizes.
R=$(pwd); G=$R/.gpu; export PATH=/usr/local/cuda/bin:$PATH
[ -x $G/gpu.test ] || (cd $G && tar xzf bin.tgz)
OUT=${OUT:-/tmp/minerva-gpu}; mkdir -p $OUT
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/calls.log
[ -f /tmp/g20/config.json ] || $G/minerva synth gpt-oss --out /tmp/g20 --threads 16 > /dev/null 2>&1
cd $R/runtime/gpu
for b in $(cd $G && ls gpu-*.test 2>/dev/null | sed 's/\.test$//') gpu; do
  echo "=== $b" >> $OUT/calls.log
  MINERVA_CUDA_BENCH=/tmp/g20 MINERVA_CUDA_BENCH_DECODE=1 MINERVA_CUDA_BENCH_CALLS=${CALLS:-2,4,8,16} timeout 120 $G/$b.test -test.run TestCUDASpeed -test.v 2>&1 | grep -v registers >> $OUT/calls.log
done
cd $R
MINERVA_BENCH_MODEL=/tmp/g20 timeout 150 bash $G/batch.sh > /dev/null 2>&1
cd $R/runtime/gpu
MINERVA_REQUIRE_CUDA=1 timeout 120 $G/gpu.test -test.run 'CUDAMatchesTransformers|CUDAEveryKernel|CUDAEveryOp|CUDAFortuneGreedy|CUDAGraphReplay' -test.v > $OUT/corr.log 2>&1
echo "correctness rc=$?: $(grep -E '^(--- |FAIL)' $OUT/corr.log | tr '\n' ' ')"
cd $R/runtime/engine
MINERVA_REQUIRE_CUDA=1 timeout 90 $G/engine.test -test.run 'TestStepMatchesAlone/.*/cuda' -test.v > $OUT/step.log 2>&1
echo "batched steps rc=$?: $(grep -E '(--- |largest)' $OUT/step.log | tr '\n' ' ')"
grep -E "^===|a call of|decode at context 4096" $OUT/calls.log
