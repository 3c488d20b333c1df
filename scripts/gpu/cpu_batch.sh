#!/bin/bash
# On the GPU machine's host CPUs (16 cores, where one token's decode is
# bound by memory rather than by two cores' arithmetic): issue 14's
# batching benchmarks on the CPU backend. Fortune through the engine, then
# the full-size synthetic gpt-oss-20b's step of 1 and of 8 sequences,
# each ratio within one run. After scripts/gpu/build.sh; /tmp/g20 is the
# synthetic 20b that compare.sh and bench.sh write.
R=$(pwd); G=$R/.gpu
[ -x $G/cpu.test ] || (cd $G && tar xzf bin.tgz)
OUT=${OUT:-/tmp/minerva-gpu}; mkdir -p $OUT
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\))' > $OUT/cpu_host.txt
# The flags line is long; the vector extensions are what the kernels pick by.
echo "vector extensions: $(grep -o -w -E 'avx2|fma|avx512[a-z_]*' /proc/cpuinfo | sort -u | tr '\n' ' ')" >> $OUT/cpu_host.txt
[ -f /tmp/g20/config.json ] || $G/minerva synth gpt-oss --out /tmp/g20 --threads 16 > /dev/null 2>&1
cd $R/runtime/engine
$G/engine.test -test.run '^$' -test.bench BatcherStreams -test.benchtime 6x -test.v 2>&1 | grep -E 'streams|: [0-9]' > $OUT/cpu_fortune_streams.log
cd $R/runtime/cpu
$G/cpu.test -test.run '^$' -test.bench 'FortuneStep/seqs=(1|8)$' -test.benchtime 400x -test.count 2 2>&1 | grep Bench > $OUT/cpu_fortune_step.log
MINERVA_SYNTH_DIR=/tmp/g20 $G/cpu.test -test.run '^$' -test.bench 'FullSizeStep/seqs=(1|8)$' -test.benchtime 3x -test.count 3 -test.timeout 10m 2>&1 | grep Bench > $OUT/cpu_20b_step.log
cat $OUT/cpu_host.txt | head -5; cat $OUT/cpu_fortune_streams.log $OUT/cpu_fortune_step.log $OUT/cpu_20b_step.log
