#!/usr/bin/env bash
# bench-peer.sh: Minerva's CPU backend and llama.cpp's CPU build, side by
# side on the same weights, in one run (docs/benchmarks.md, "llama.cpp on
# the same weights").
#
#   scripts/bench-peer.sh [DIR]        # default DIR: /tmp/gpt-oss-20b
#
# 1. writes the full-size synthetic gpt-oss-20b into DIR with `minerva
#    synth` (13.8 GB; skipped when DIR has a config.json), and its GGUF
#    export, DIR.gguf (13.8 GB; skipped when present);
# 2. installs llama.cpp (scripts/install-llama.sh) if .llama/ lacks it;
# 3. warms the page cache with each file just before its engine runs;
# 4. runs Minerva's full-size benchmarks (decode after a 16-token prompt
#    with the memory floor measured in the same run; prefill of one
#    128-token batch), for the best and the AVX2 kernels, and
#    scripts/llama-bench.mjs, the same two measurements in llama.cpp, with
#    the same thread count, COUNT times each;
# 5. prints the medians and the ratio Minerva / llama.cpp.
#
# Environment: THREADS (default: all cores), COUNT (5), STEPS (decode
# steps per measurement, 10), PREFILL_STEPS (128-token batches per
# measurement, 2), KEEP=1 keeps the files (they are deleted
# at the end otherwise, when this script wrote them).
# Both files are 13.8 GB: with less than ~30 GB of free memory the page
# cache cannot hold both, so each engine's file is read again before it
# runs, and a machine shared with other work gives noisy figures.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3
DIR=${1:-/tmp/gpt-oss-20b}
GGUF=${DIR%/}.gguf
THREADS=${THREADS:-$(nproc)}
COUNT=${COUNT:-5}
STEPS=${STEPS:-10}
PREFILL_STEPS=${PREFILL_STEPS:-2}
OUT=build/bench-peer
mkdir -p "$OUT"
go build -o build/minerva ./cmd/minerva
wrote=()
if [ ! -f "$DIR/config.json" ]; then
  tok=()
  [ -f /work/shared/fixtures/tokenizer/tokenizer.json ] && tok=(--tokenizer /work/shared/fixtures/tokenizer/tokenizer.json)
  build/minerva synth gpt-oss --out "$DIR" "${tok[@]}"
  wrote+=("$DIR")
fi
if [ ! -f "$GGUF" ]; then
  build/minerva export --model "$DIR" --gguf "$GGUF"
  wrote+=("$GGUF")
fi
[ -f .llama/node_modules/node-llama-cpp/package.json ] || scripts/install-llama.sh

echo "== Minerva ($THREADS threads): cat $DIR/*.safetensors > /dev/null, then runtime/cpu FullSize benchmarks" >&2
cat "$DIR"/*.safetensors > /dev/null
go test -c -o build/cpu.test ./runtime/cpu/
for what in "Decode $STEPS" "Prefill $PREFILL_STEPS"; do
  set -- $what
  # The test binary runs in its package's directory, as go test runs it.
  (cd runtime/cpu && MINERVA_SYNTH_DIR=$DIR ../../build/cpu.test -test.run '^$' -test.cpu "$THREADS" \
    -test.bench "FullSize$1/kernels=(avx512|avx2)\$" -test.benchtime "${2}x" -test.count "$COUNT" -test.timeout 120m)
done | tee "$OUT/minerva.txt" >&2
echo "== llama.cpp ($THREADS threads): cat $GGUF > /dev/null, then scripts/llama-bench.mjs" >&2
cat "$GGUF" > /dev/null
node scripts/llama-bench.mjs "$GGUF" --threads "$THREADS" --steps "$STEPS" --count "$COUNT" | tee "$OUT/llama.jsonl" >&2

python3 - "$OUT/minerva.txt" "$OUT/llama.jsonl" <<'PY'
import json, re, statistics, sys
mine = {}
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkFullSize(Decode|Prefill)/kernels=(\w+)-\d+\s", line)
    if not m:
        continue
    metrics = dict((k, float(v)) for v, k in re.findall(r"([0-9.e+-]+) (\S+)", line[m.end():]))
    mine.setdefault((m.group(1), m.group(2)), []).append(metrics)
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
med = statistics.median
pd = med(p["decode_tok_s"] for p in peer)
pp = med(p["prefill_tok_s"] for p in peer)
print("%-26s %12s %12s %10s %14s" % ("engine, kernels", "decode tok/s", "% of floor", "prefill tok/s", "vs llama.cpp d/p"))
for (kind, kernels) in sorted({k for k in mine if k[0] == "Decode"}, key=lambda k: k[1], reverse=True):
    d = mine[(kind, kernels)]
    p = mine.get(("Prefill", kernels), [])
    dt = med(x["tok/s"] for x in d)
    fl = med(x["%floor"] for x in d)
    pt = med(x["tok/s"] for x in p) if p else float("nan")
    print("%-26s %12.2f %11.0f%% %13.1f %8.2fx / %.2fx" % ("minerva, " + kernels, dt, fl, pt, dt / pd, pt / pp))
    print("   floor (same run): %.2f tok/s from %.1f GB/s; page faults per token: %.0f minor, %.0f major" % (
        med(x["floor-tok/s"] for x in d), med(x["GB/s"] for x in d), med(x.get("minflt/token", 0) for x in d), med(x.get("majflt/token", 0) for x in d)))
    if p and "GFLOP/s" in p[0]:
        print("   prefill: %.0f GFLOP/s, %.0f%% of the FMA peak measured in the same run (%.0f GFLOP/s)" % (
            med(x["GFLOP/s"] for x in p), med(x.get("%peak", 0) for x in p), med(x.get("peak-GFLOP/s", 0) for x in p)))
print("%-26s %12.2f %12s %13.1f" % ("llama.cpp (node-llama-cpp)", pd, "", pp))
print("medians of %d runs each" % len(peer))
PY
if [ -z "${KEEP:-}" ] && [ ${#wrote[@]} -gt 0 ]; then
  echo "removing ${wrote[*]} (KEEP=1 keeps them)" >&2
  rm -rf "${wrote[@]}"
fi
