#!/bin/bash
# compare.sh: correctness on the GPU, then decode speed of the base kernels
# (gpu-base.test, built by MINERVA_GPU_BASE=COMMIT scripts/gpu/build.sh) and the current ones (gpu.test) on
# the same synthetic 20b in one run, then batching on fortune. Logs go to $OUT. On the device:
#   bash .gpu/compare.sh
R=$(pwd); G=$R/.gpu; export PATH=/usr/local/cuda/bin:$PATH
(cd $G && tar xzf bin.tgz)
T0=$(date +%s); el() { echo "[t+$(( $(date +%s) - T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/gpu.txt
el synth; ($G/minerva synth gpt-oss --out /tmp/g20 --threads 16 > $OUT/synth.log 2>&1 &) 
el correctness; timeout 200 bash $G/correctness.sh > $OUT/correctness.log 2>&1; el "correctness rc=$?"; tail -25 $OUT/correctness.log
while pgrep -f "minerva synth" >/dev/null; do sleep 2; done; el synth-done; tail -1 $OUT/synth.log
cd $R/runtime/gpu
for b in gpu gpu-base; do
  [ -x $G/$b.test ] || continue
  MINERVA_CUDA_BENCH=/tmp/g20 MINERVA_REQUIRE_CUDA=1 MINERVA_CUDA_BENCH_DECODE=1 timeout 150 $G/$b.test -test.run TestCUDASpeed -test.v -test.timeout 20m > $OUT/speed_$b.log 2>&1
  el "speed $b rc=$?"; grep -E "decode|floor|bandwidth|share|^\|" $OUT/speed_$b.log | head -30
done
cd $R; el batch; OUT=$OUT timeout 100 bash $G/batch.sh > $OUT/batch_fortune_run.log 2>&1; el "batch rc=$?"; tail -10 $OUT/batch_fortune_run.log
