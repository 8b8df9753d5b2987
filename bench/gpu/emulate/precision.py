#!/usr/bin/env python3
"""precision.py — CPU emulation of the CUDA engine's rounding points (not a GPU result).

Rounds to fp16/bf16 exactly where cuda/engine_cuda.cu stores activations (GEMM outputs, QKV +
bias, softmax P, ctx, LayerNorm outputs, GELU output; weight matrices in the storage type,
biases and LN parameters fp32, all math fp32) and compares the logit with an fp32 forward on
seeded random pairs. Usage (the HF oracle venv has torch + safetensors):
  .venv-oracle/bin/python bench/gpu/emulate/precision.py models/minilm-l6-bert f16|bf16 T|r32 [N|PAIRS.jsonl]
r32 keeps the residual stream in fp32 (the alternative the engine did not take). The last
argument is a count of seeded random pairs (default 60) or a golden pairs file
(tests/golden/<model>/pairs.jsonl: its HF token ids, every pair), which also reports the
largest difference from the file's transformers fp32 logits.
"""
import json, sys, torch
from safetensors.torch import load_file
torch.manual_seed(0)
M = sys.argv[1]; mode = sys.argv[2]; resid32 = len(sys.argv) > 3 and sys.argv[3] == "r32"
W = load_file(f'{M}/model.safetensors'); cfg = json.load(open(f'{M}/config.json'))
d, nh = cfg['hidden_size'], cfg['num_attention_heads']; dh = d // nh; eps = cfg['layer_norm_eps']
L = cfg['num_hidden_layers']
dt = {'f16': torch.float16, 'bf16': torch.bfloat16, 'f32': None}[mode]
R = (lambda t: t.to(dt).float()) if dt else (lambda t: t)
Wr = {k: (R(v.float()) if v.dim() == 2 else v.float()) for k, v in W.items()}  # matrices rounded, vectors fp32
def ln(x, g, b):
    m = x.mean(-1, keepdim=True); v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + eps) * g + b
def gelu(x): return 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))
def fwd(ids, tt, Wd, R, resid32):
    p = 'bert.'
    n = len(ids)
    e = Wd[p+'embeddings.word_embeddings.weight'][ids] + Wd[p+'embeddings.position_embeddings.weight'][:n] + Wd[p+'embeddings.token_type_embeddings.weight'][tt]
    h = ln(e, Wd[p+'embeddings.LayerNorm.weight'], Wd[p+'embeddings.LayerNorm.bias'])
    hs = h if resid32 else R(h); hT = R(h)
    for l in range(L):
        q = f'{p}encoder.layer.{l}.'
        def lin(x, name): return R(x @ Wd[q+name+'.weight'].T)
        Q = R(lin(hT, 'attention.self.query') + Wd[q+'attention.self.query.bias'])
        K = R(lin(hT, 'attention.self.key') + Wd[q+'attention.self.key.bias'])
        V = R(lin(hT, 'attention.self.value') + Wd[q+'attention.self.value.bias'])
        ctx = torch.empty(n, d)
        for h_ in range(nh):
            s = Q[:, h_*dh:(h_+1)*dh] @ K[:, h_*dh:(h_+1)*dh].T / dh ** 0.5
            pr = torch.softmax(s, -1)
            ctx[:, h_*dh:(h_+1)*dh] = R(R(pr) @ V[:, h_*dh:(h_+1)*dh] if dt else pr @ V[:, h_*dh:(h_+1)*dh])
        a = lin(ctx, 'attention.output.dense') + Wd[q+'attention.output.dense.bias'] + hs
        x = ln(a, Wd[q+'attention.output.LayerNorm.weight'], Wd[q+'attention.output.LayerNorm.bias'])
        xs = x if resid32 else R(x); xT = R(x)
        f = R(gelu(lin(xT, 'intermediate.dense') + Wd[q+'intermediate.dense.bias']))
        y = ln(lin(f, 'output.dense') + Wd[q+'output.dense.bias'] + xs, Wd[q+'output.LayerNorm.weight'], Wd[q+'output.LayerNorm.bias'])
        hs = y if resid32 else R(y); hT = R(y)
    c = hs[0]
    pooled = torch.tanh(c @ Wd['bert.pooler.dense.weight'].T + Wd['bert.pooler.dense.bias'])
    return (pooled @ Wd['classifier.weight'].T + Wd['classifier.bias']).item()
W32 = {k: v.float() for k, v in W.items()}
worst = 0; logits = []; gold_worst = 0
arg = sys.argv[4] if len(sys.argv) > 4 else "60"
if arg.endswith(".jsonl"):
    cases = []
    for line in open(arg):
        o = json.loads(line)
        cases.append((torch.tensor(o["input_ids"]), torch.tensor(o["token_type_ids"]), o.get("logit")))
else:
    cases = []
    for i in range(int(arg)):
        nd = int(torch.randint(20, 201, (1,)))
        ids = torch.cat([torch.tensor([101]), torch.randint(1000, 30522, (16,)), torch.tensor([102]), torch.randint(1000, 30522, (nd,)), torch.tensor([102])])
        tt = torch.cat([torch.zeros(18, dtype=torch.long), torch.ones(nd + 1, dtype=torch.long)])
        cases.append((ids, tt, None))
for ids, tt, gold in cases:
    a = fwd(ids, tt, W32, lambda t: t, False); b = fwd(ids, tt, Wr, R, resid32)
    worst = max(worst, abs(a - b)); logits.append(a)
    if gold is not None:
        gold_worst = max(gold_worst, abs(b - (gold[0] if isinstance(gold, list) else gold)))
print(mode, 'fp32-residual' if resid32 else 'T-residual', f'{len(cases)} pairs',
      'max |diff| vs fp32 %.4g' % worst, 'logit range %.2f..%.2f' % (min(logits), max(logits)),
      ('max |diff| vs the golden logits %.4g' % gold_worst) if any(c[2] is not None for c in cases) else '')
