#!/bin/bash
# round.sh: everything one scarce device call can hold, most important
# first, with the logs re-packed into $OUT/logs.tgz after each phase (a
# call brings back only a few files, and one cut short by its time limit
# still brings back what is there):
#   1. compare.sh without batching: correctness on main (correctness.sh),
#      then decode timings of the builds (MINERVA_GPU_BUILDS, default all);
#   2. the correctness tests of each variant build (gpu-NAME.test), so a
#      candidate that wins has run against transformers and the CPU;
#   3. the full speed run on main (bench.sh's TestCUDASpeed, no
#      transformers) with what is left of ROUND_S seconds.
# On the device, after scripts/gpu/build.sh here:
#   ROUND_S=520 bash .gpu/round.sh
R=$(pwd); G=$R/.gpu; export PATH=/usr/local/cuda/bin:$PATH
S=$(date +%s); left() { echo $(( ${ROUND_S:-520} - ($(date +%s) - S) )); }
pack() { (cd $OUT && tar czf logs.tgz --exclude logs.tgz *.log *.txt 2>/dev/null); }
MINERVA_GPU_SKIP_BATCH=1 timeout $(( $(left) - 60 )) bash $G/compare.sh; echo "compare rc=$?"; pack
cd $R/runtime/gpu
for t in $(cd $G && ls gpu-*.test 2>/dev/null | grep -v '^gpu-base.test$'); do
  [ $(left) -lt 120 ] && break
  MINERVA_REQUIRE_CUDA=1 timeout 90 $G/$t -test.run 'CUDAMatchesTransformers|CUDAEveryKernel|CUDAEveryOp|CUDAFortuneGreedy' -test.v > $OUT/corr_${t%.test}.log 2>&1
  echo "correctness ${t%.test} rc=$?: $(grep -E '^(--- |FAIL)' $OUT/corr_${t%.test}.log | tr '\n' ' ')"; pack
done
if [ $(left) -gt 90 ]; then
  MINERVA_CUDA_BENCH=/tmp/g20 MINERVA_REQUIRE_CUDA=1 timeout $(( $(left) - 10 )) $G/gpu.test -test.run TestCUDASpeed -test.v -test.timeout 20m > $OUT/bench_full.log 2>&1
  echo "full speed run rc=$?"; grep -E "prefill|decode at" $OUT/bench_full.log
fi
pack
