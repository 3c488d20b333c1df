# transformers on the same GPU, same shape: decode and prefill tok/s, bf16.
# Loads the minerva synth checkpoint (MXFP4 experts dequantized to bf16);
# if that fails, builds the model from its config.json with random bf16
# weights (speed does not depend on the values) and says so.
import json, sys, time, os, torch
from transformers import AutoConfig, AutoModelForCausalLM
d = sys.argv[1]
# minerva synth writes the architecture's parameters, not transformers'
# model_type; name it (and the layer types gpt-oss alternates).
c = json.load(open(d + "/config.json"))
c.setdefault("model_type", "gpt_oss")
c.setdefault("architectures", ["GptOssForCausalLM"])
json.dump(c, open(d + "/config.json", "w"), indent=1)
print("config keys:", sorted(c)[:40], flush=True)
t0 = time.time()
how = "loaded from the synth checkpoint (Mxfp4Config(dequantize=True), bf16)"
try:
    # MINERVA_HF_RANDOM=1 skips the load attempt: its failure leaves
    # memory that an 80 GB GPU then lacks for the random-weight model.
    if os.environ.get("MINERVA_HF_RANDOM") == "1":
        raise RuntimeError("MINERVA_HF_RANDOM=1")
    from transformers import Mxfp4Config
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, device_map="cuda",
        quantization_config=Mxfp4Config(dequantize=True), attn_implementation="eager")
except Exception as e:
    print("checkpoint load failed:", repr(e)[:300], flush=True)
    import gc
    model = None
    gc.collect()
    torch.cuda.empty_cache()
    cfg = AutoConfig.from_pretrained(d)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    cfg._attn_implementation = "eager"
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    how = "random bf16 weights from the checkpoint's config.json"
model.eval()
print(f"transformers: model ready in {time.time()-t0:.0f} s; {how}; experts impl: {getattr(model.config,'experts_implementation',None)}", flush=True)
V = model.config.vocab_size
g = torch.Generator(device="cuda").manual_seed(0)
def ids(n): return torch.randint(0, V, (1, n), device="cuda", generator=g)
@torch.no_grad()
def prefill(n, chunk=None):
    x = ids(n); pkv = None; chunk = chunk or n
    for s in range(0, n, chunk):
        out = model(input_ids=x[:, s:s+chunk], past_key_values=pkv, use_cache=True)
        pkv = out.past_key_values
    return pkv
@torch.no_grad()
def decode(pkv, steps):
    nxt = ids(1)
    for _ in range(steps):
        out = model(input_ids=nxt, past_key_values=pkv, use_cache=True)
        pkv = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
    return pkv
prefill(512)
for n in (512, 4096):
    torch.cuda.synchronize(); t = time.time(); prefill(n); torch.cuda.synchronize()
    print(f"transformers prefill {n} tokens (one call): {n/(time.time()-t):.0f} tok/s", flush=True)
for ctx in (4096, 32768):
    pkv = None
    try:
        pkv = prefill(ctx, 4096)
        decode(pkv, 2)
        pkv = prefill(ctx, 4096)
        torch.cuda.synchronize(); t = time.time(); decode(pkv, 16); torch.cuda.synchronize()
        s = (time.time()-t)/16
        print(f"transformers decode at context {ctx}: {1/s:.1f} tok/s ({1e3*s:.1f} ms/token)", flush=True)
    except Exception as e:
        print(f"transformers decode at context {ctx}: failed: {repr(e)[:200]}", flush=True)
    del pkv
    torch.cuda.empty_cache()
