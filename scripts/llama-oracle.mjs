// llama-oracle.mjs runs llama.cpp (through node-llama-cpp's prebuilt CPU
// binding; the package ships no llama-cli) on a GGUF file and prints one
// JSON object: for each request, llama.cpp's own tokenization of a text,
// its greedy continuation from given ids, and its log-probabilities after
// each given id.
//
//   NODE_PATH=.llama/node_modules node scripts/llama-oracle.mjs MODEL.gguf REQUESTS.json
//
// REQUESTS.json: {"tokenize": ["text", ...],
//                  "greedy": [{"ids": [...], "n": 40}, ...],
//                  "logprobs": [[ids...], ...]}
// Output: {"tokens": [[...]], "greedy": [[...]], "text": ["..."],
//          "logprobs": [[[V floats] per id] per list]}
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const modulesDir = process.env.NODE_PATH || path.join(process.cwd(), ".llama/node_modules");
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp", { paths: [modulesDir] }));

const [modelPath, requestsPath] = process.argv.slice(2);
if (!modelPath || !requestsPath) {
  console.error("usage: node scripts/llama-oracle.mjs MODEL.gguf REQUESTS.json");
  process.exit(2);
}
const req = JSON.parse(fs.readFileSync(requestsPath, "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const out = { tokens: [], greedy: [], text: [], logprobs: [] };

for (const text of req.tokenize ?? []) {
  out.tokens.push(Array.from(model.tokenize(text, false)));
}

async function withSequence(fn) {
  const context = await model.createContext({ contextSize: 256, batchSize: 128, sequences: 1, threads: 1, flashAttention: false, experimentalKvCacheKeyType: process.env.KV || undefined, experimentalKvCacheValueType: process.env.KV || undefined });
  try {
    return await fn(context.getSequence());
  } finally {
    await context.dispose();
  }
}

for (const g of req.greedy ?? []) {
  const ids = await withSequence(async (seq) => {
    // One token at a time through controlledEvaluate, which (unlike
    // evaluate()) does not stop at end-of-generation tokens: a reference
    // continuation runs through them.
    const got = [];
    let input = g.ids;
    while (got.length < g.n) {
      const items = input.map((t, i) => (i === input.length - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
      const res = await seq.controlledEvaluate(items);
      const next = res[res.length - 1].next.token;
      got.push(next);
      input = [next];
    }
    return got;
  });
  out.greedy.push(ids);
  out.text.push(model.detokenize(ids.filter((t) => !model.isSpecialToken?.(t))));
}

for (const ids of req.logprobs ?? []) {
  const rows = await withSequence(async (seq) => {
    const items = ids.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]);
    const res = await seq.controlledEvaluate(items);
    const V = model.tokens.size ?? model.fileInsights?.tokens ?? 0;
    return res.map((r) => {
      const row = new Array(V).fill(null);
      for (const [tok, p] of r.next.probabilities) row[tok] = Math.log(p);
      return row;
    });
  });
  out.logprobs.push(rows);
}
process.stdout.write(JSON.stringify(out));
await model.dispose();
await llama.dispose();
