// llama-bench.mjs times llama.cpp (node-llama-cpp's prebuilt CPU binding)
// on a GGUF file the way runtime/cpu's full-size benchmarks time Minerva:
// prefill of one 128-token batch from position 0 (token ids
// (1000 + 37 i) mod vocab), and decode of one token at a time after a
// 16-token prompt, feeding ids (100 + i) mod vocab and computing each
// step's logits. Prints one JSON line per repetition.
//
//   NODE_PATH=.llama/node_modules node scripts/llama-bench.mjs MODEL.gguf [--threads N] [--steps N] [--count N]
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const modulesDir = process.env.NODE_PATH || path.join(process.cwd(), ".llama/node_modules");
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp", { paths: [modulesDir] }));

const args = process.argv.slice(2);
const modelPath = args[0];
const opt = (name, def) => {
  const i = args.indexOf("--" + name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const threads = opt("threads", 0);
const steps = opt("steps", 10);
const count = opt("count", 5);
const batch = opt("batch", 128);
if (!modelPath) {
  console.error("usage: node scripts/llama-bench.mjs MODEL.gguf [--threads N] [--steps N] [--count N] [--batch N]");
  process.exit(2);
}
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const t0 = performance.now();
const model = await llama.loadModel({ modelPath });
const loadMs = performance.now() - t0;
const vocab = model.tokens?.size ?? model.fileInsights.tokens ?? 0;
const ids = (n, base, step) => Array.from({ length: n }, (_, i) => (base + step * i) % vocab);
// The same context settings as Minerva's benchmark: 4096 positions, f16
// cache (llama.cpp's default), one sequence.
const context = await model.createContext({ contextSize: 4096, batchSize: batch, sequences: 1, threads: threads || undefined });
const seq = context.getSequence();
const last = (tokens) => tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));

for (let r = 0; r < count; r++) {
  await seq.clearHistory();
  let start = performance.now();
  await seq.controlledEvaluate(last(ids(batch, 1000, 37)));
  const prefill = batch / ((performance.now() - start) / 1000);

  await seq.clearHistory();
  await seq.controlledEvaluate(last(ids(16, 1000, 37)));
  await seq.controlledEvaluate(last([7])); // untimed: its pages mapped
  start = performance.now();
  for (let i = 0; i < steps; i++) await seq.controlledEvaluate(last([(100 + i) % vocab]));
  const decode = steps / ((performance.now() - start) / 1000);
  console.log(JSON.stringify({ engine: "llama.cpp", threads: context.currentThreads ?? threads, load_ms: loadMs, prefill_tok_s: prefill, decode_tok_s: decode }));
}
await context.dispose();
await model.dispose();
await llama.dispose();
