#!/bin/bash
# round.sh: everything one scarce device call can hold, most important
# first, with the logs re-packed into $OUT/logs.tgz after each phase (a
# call brings back only a few files, and one cut short by its time limit
# still brings back what is there):
#   1. compare.sh without batching: correctness on main (correctness.sh),
#      then decode timings of the builds (MINERVA_GPU_BUILDS, default all);
#   2. the fastest build at 4K (best.txt): if it is a variant, its
#      correctness tests (gpu-NAME.test), so a candidate that wins has
#      run against transformers and the CPU;
#   3. bench.sh with the fastest build: the full speed run (TestCUDASpeed),
#      then transformers on the same GPU; issue 13's figures from the
#      kernels that would land;
#   4. compute-sanitizer's memcheck, racecheck and synccheck over the
#      winning variant's kernels on fortune;
#   5. the other variants' correctness tests, with what is left of
#      ROUND_S seconds.
# On the device, after scripts/gpu/build.sh here:
#   ROUND_S=520 bash .gpu/round.sh
# (ROUND_AFTER=S keeps S seconds after the timings, default 60.)
R=$(pwd); G=$R/.gpu; export PATH=/usr/local/cuda/bin:$PATH
S=$(date +%s); left() { echo $(( ${ROUND_S:-520} - ($(date +%s) - S) )); }
# A call brings back at most 8 files from $OUT, and a round writes about
# 20 logs: they go to a folder of their own, and $OUT gets logs.tgz and
# the three a reader wants first.
BACK=$OUT; export OUT=$(mktemp -d)
pack() { (cd $OUT && tar czf $BACK/logs.tgz *.log *.txt 2>/dev/null; cp best.txt bench.log hf.log $BACK/ 2>/dev/null); }
MINERVA_GPU_SKIP_BATCH=1 timeout $(( $(left) - ${ROUND_AFTER:-60} )) bash $G/compare.sh; echo "compare rc=$?"; pack
# Mean of a build's two 4K decode figures (f16 cache).
rate() { sed -n 's/.*decode at context 4096: \([0-9.]*\) tok\/s.*/\1/p' $OUT/speed_$1.log | awk '{s+=$1; n++} END {if (n) printf "%.1f", s/n; else print 0}'; }
best=gpu
for f in $OUT/speed_gpu*.log; do
  b=${f#$OUT/speed_}; b=${b%.log}
  echo "$b: $(rate $b) tok/s at 4K" | tee -a $OUT/best.txt
  [ $b != gpu-base ] && awk -v a=$(rate $b) -v c=$(rate $best) 'BEGIN {exit !(a > c)}' && best=$b
done
echo "best: $best" | tee -a $OUT/best.txt
cd $R/runtime/gpu
corr() {
  MINERVA_REQUIRE_CUDA=1 timeout 90 $G/$1.test -test.run 'CUDAMatchesTransformers|CUDAEveryKernel|CUDAEveryOp|CUDAFortuneGreedy|CUDAGraphReplay' -test.v > $OUT/corr_$1.log 2>&1
  echo "correctness $1 rc=$?: $(grep -E '^(--- |FAIL)' $OUT/corr_$1.log | tr '\n' ' ')"; pack
}
[ $best != gpu ] && corr $best
if [ $(left) -gt 90 ]; then
  (cd $R && MINERVA_GPU_TEST=$best OUT=$OUT timeout $(( $(left) - 10 )) bash $G/bench.sh > /dev/null 2>&1)
  echo "full speed run and transformers ($best) rc=$?"; grep -E "bandwidth|prefill|decode at" $OUT/bench.log $OUT/hf.log; pack
fi
# The sanitizers last of the winner's checks: a short call keeps its
# figures and correctness, and main's own sanitizer runs are in
# correctness.sh.
if [ $best != gpu ]; then
  for tool in memcheck racecheck synccheck; do
    [ $(left) -lt 40 ] && break
    timeout $(( $(left) < 70 ? $(left) - 10 : 60 )) compute-sanitizer --tool $tool --print-limit 20 $G/$best.test -test.run 'TestCUDAEveryKernelAgainstCPU/gpt-oss/fortune-f16' -test.v > $OUT/san_${best}_$tool.log 2>&1
    echo "$best $tool (exit $?): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san_${best}_$tool.log)"
  done
  pack
fi
for t in $(cd $G && ls gpu-*.test 2>/dev/null | sed 's/\.test$//' | grep -v -e '^gpu-base$' -e "^$best\$"); do
  [ $(left) -lt 100 ] && break
  corr $t
done
pack
