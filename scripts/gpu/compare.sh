#!/bin/bash
# compare.sh: correctness on the GPU, then decode speed of the base kernels
# (gpu-base.test, built by MINERVA_GPU_BASE=COMMIT scripts/gpu/build.sh), the current ones (gpu.test) and
# any variants (gpu-NAME.test, MINERVA_GPU_VARIANTS="NAME=REV ...") on
# the same synthetic 20b in one run, then issue 14's batching on the host's
# CPUs (cpu_batch.sh), then batching through CUDA on fortune. Logs go to $OUT. On the device:
#   bash .gpu/compare.sh
# (MINERVA_GPU_SKIP_BATCH=1 stops after the decode timings.)
R=$(pwd); G=$R/.gpu; export PATH=/usr/local/cuda/bin:$PATH
(cd $G && tar xzf bin.tgz)
T0=$(date +%s); el() { echo "[t+$(( $(date +%s) - T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/gpu.txt
el synth; ($G/minerva synth gpt-oss --out /tmp/g20 --threads 16 > $OUT/synth.log 2>&1 &) 
# MINERVA_GPU_SKIP_CORRECTNESS=1 skips it where main's suite already ran on the device.
if [ "${MINERVA_GPU_SKIP_CORRECTNESS:-}" != 1 ]; then
  el correctness; timeout 180 bash $G/correctness.sh > $OUT/correctness.log 2>&1; el "correctness rc=$?"; tail -25 $OUT/correctness.log
fi
while pgrep -f "minerva synth" >/dev/null; do sleep 2; done; el synth-done; tail -1 $OUT/synth.log
cd $R/runtime/gpu
# gpu, gpu-base and every variant (MINERVA_GPU_VARIANTS), twice, in
# alternating order, since one binary moves by a few percent between runs.
# MINERVA_GPU_BUILDS="gpu gpu-all" times only those, when device time is short.
builds=${MINERVA_GPU_BUILDS:-"gpu gpu-base $(cd $G && ls gpu-*.test 2>/dev/null | sed 's/\.test$//' | grep -v '^gpu-base$')"}
for b in $builds $(echo $builds | tr ' ' '\n' | tac); do
  [ -x $G/$b.test ] || continue
  # The base may predate MINERVA_CUDA_BENCH_DECODE; SHORT skips its 4096-token prefill.
  MINERVA_CUDA_BENCH=/tmp/g20 MINERVA_REQUIRE_CUDA=1 MINERVA_CUDA_BENCH_DECODE=1 MINERVA_CUDA_BENCH_SHORT=1 timeout 130 $G/$b.test -test.run TestCUDASpeed -test.v -test.timeout 20m >> $OUT/speed_$b.log 2>&1
  el "speed $b rc=$?"; grep -E "decode at context|decode floor" $OUT/speed_$b.log | tail -3
done
cd $R; [ "${MINERVA_GPU_SKIP_BATCH:-}" = 1 ] && exit 0  # kernels only
el cpu-batch; OUT=$OUT timeout 120 bash $G/cpu_batch.sh > $OUT/cpu_batch_run.log 2>&1; el "cpu-batch rc=$?"; tail -20 $OUT/cpu_batch_run.log
el batch; OUT=$OUT timeout 60 bash $G/batch.sh > $OUT/batch_fortune_run.log 2>&1; el "batch rc=$?"; tail -10 $OUT/batch_fortune_run.log
