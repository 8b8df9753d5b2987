#!/usr/bin/env python3
"""make_xlmr_large.py — writes a seeded folder shaped like XLM-RoBERTa large / bge-reranker-v2-m3
(24 layers, d 1024, 16 heads, d_ff 4096, 8194 positions, vocabulary 250002: 567,755,777
parameters, 2.3 GB of fp32) to check that a model of that size loads and runs on the CPU engine
within a small machine's memory. The weights are random (std 0.02, LayerNorm 1 / 0) and the
head is seeded: it is NOT a reranker. The tokenizer files are models/xlmr-long's (its 8002 ids
fit the 250002-row table). Not built by setup.sh (2.3 GB); run in .venv:

    .venv/bin/python scripts/make_xlmr_large.py --out /tmp/xlmr-large
    /usr/bin/time -v build/rerank score --model /tmp/xlmr-large --query "..." --docs FILE
"""
import argparse
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file

import make_models  # scripts/: the encoder-layer recipe the test models use

V, D, F, L, P, H = 250002, 1024, 4096, 24, 8194, 16


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer-from", default="models/xlmr-long")
    args = ap.parse_args()
    rng = np.random.default_rng(20261205)

    def n(*shape, std=0.02):
        return rng.standard_normal(shape, dtype=np.float32) * std

    def ln(prefix):
        return {prefix + ".weight": np.ones(D, np.float32), prefix + ".bias": np.zeros(D, np.float32)}

    t = {"roberta.embeddings.word_embeddings.weight": n(V, D),
         "roberta.embeddings.position_embeddings.weight": n(P, D),
         "roberta.embeddings.token_type_embeddings.weight": n(1, D)}
    t.update(ln("roberta.embeddings.LayerNorm"))
    make_models.encoder_layers(t, "roberta", L, D, F, n, lambda name: t.update(ln(name)))
    t["classifier.dense.weight"] = n(D, D)
    t["classifier.dense.bias"] = n(D)
    t["classifier.out_proj.weight"] = n(1, D)
    t["classifier.out_proj.bias"] = n(1)
    os.makedirs(args.out, exist_ok=True)
    save_file(t, os.path.join(args.out, "model.safetensors"))
    cfg = {"architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta",
           "vocab_size": V, "hidden_size": D, "num_hidden_layers": L, "num_attention_heads": H,
           "intermediate_size": F, "max_position_embeddings": P, "type_vocab_size": 1,
           "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-5,
           "hidden_act": "gelu", "num_labels": 1, "id2label": {"0": "LABEL_0"},
           "label2id": {"LABEL_0": 0}}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(args.tokenizer_from, name), os.path.join(args.out, name))
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("Seeded random weights in XLM-RoBERTa large's shape (scripts/make_xlmr_large.py): "
                "a size check, not a reranker. For a real one: huggingface-cli download "
                "BAAI/bge-reranker-v2-m3.\n")
    print("make_xlmr_large: %d parameters in %s" % (sum(v.size for v in t.values()), args.out))


if __name__ == "__main__":
    main()
