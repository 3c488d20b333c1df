#!/bin/bash
# On the GPU machine, from the repository root, after scripts/gpu/build.sh:
# the CUDA tests (every fixture against transformers, every kernel and op
# against the CPU backend, fortune's greedy text), then compute-sanitizer's
# memcheck, racecheck and synccheck over a fortune generation.
R=$(pwd); G=$R/.gpu
[ -x $G/minerva ] || (cd $G && tar xzf bin.tgz)
OUT=${OUT:-/tmp/minerva-gpu}; mkdir -p $OUT
export PATH=/usr/local/cuda/bin:$PATH
(cd $R/runtime/gpu && MINERVA_REQUIRE_CUDA=1 $G/gpu.test -test.run CUDA -test.v 2>&1 | tee $OUT/tests.log | grep -E "^(--- |PASS|FAIL|ok)|bound|greedy")
# Issue 14's conformance on the GPU: sequences stepped together against
# each run alone, through the CUDA backend.
(cd $R/runtime/engine && $G/engine.test -test.run StepMatchesAlone -test.v 2>&1 | tee $OUT/batch.log | grep -E "^( *--- |PASS|FAIL|ok)")
cd $R
P="The meaning of life is"
$G/minerva run --backend cpu --prompt "$P" --max-tokens 24 --temperature 0 > /tmp/text_cpu.txt 2>/dev/null
$G/minerva run --backend cuda --prompt "$P" --max-tokens 24 --temperature 0 > /tmp/text_cuda.txt 2>/dev/null
cmp /tmp/text_cpu.txt /tmp/text_cuda.txt && echo "fortune: the CUDA text equals the CPU's"
for tool in memcheck racecheck synccheck; do
  compute-sanitizer --tool $tool --print-limit 20 $G/minerva run --backend cuda --prompt "$P" --max-tokens 6 --temperature 0 > $OUT/san_$tool.log 2>&1
  echo "$tool (exit $?): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san_$tool.log)"
done
