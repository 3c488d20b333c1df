#!/bin/bash
# On the GPU machine, from the repository root, after scripts/gpu/build.sh:
# a full-size synthetic gpt-oss-20b, Minerva's speed run on it (copy
# bandwidth, decode floor, prefill and decode with f16 and q8 caches, the
# per-kernel table), then transformers on the same GPU.
# MINERVA_GPU_TEST=gpu-NAME times that build's kernels (round.sh's winner);
# a finished checkpoint in /tmp/g20 (compare.sh's; synth writes config.json
# last) is reused.
R=$(pwd); G=$R/.gpu; T=${MINERVA_GPU_TEST:-gpu}
[ -x $G/minerva ] || (cd $G && tar xzf bin.tgz)
OUT=${OUT:-/tmp/minerva-gpu}; mkdir -p $OUT
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee $OUT/bench.log
[ -f /tmp/g20/config.json ] || $G/minerva synth gpt-oss --out /tmp/g20 --threads 16 2>&1 | tail -1 | tee -a $OUT/bench.log
(cd $R/runtime/gpu && MINERVA_CUDA_BENCH=/tmp/g20 MINERVA_REQUIRE_CUDA=1 $G/$T.test -test.run TestCUDASpeed -test.v -test.timeout 20m 2>&1 | tee -a $OUT/bench.log)
# The synthetic checkpoint does not load into transformers (its MXFP4
# conversion refuses it), and the failed try leaves too little of an 80 GB
# GPU: MINERVA_HF_RANDOM=1 builds the model from config.json directly.
PY=/opt/torch/.venv/bin/python3; [ -x $PY ] || PY=python3
MINERVA_HF_RANDOM=1 PYTHONUNBUFFERED=1 $PY $G/hf_bench.py /tmp/g20 2>&1 | grep -v Warning | tee $OUT/hf.log | tail -6
