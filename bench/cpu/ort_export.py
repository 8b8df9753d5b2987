#!/usr/bin/env python3
"""ort_export.py — makes the ONNX graphs of the ONNX Runtime peer (bench/cpu/setup-ort.sh runs it).

  ort_export.py export MODEL_DIR OUT.onnx      (in .venv-oracle: needs torch + transformers)
      torch.onnx.export of the HF BertForSequenceClassification with the TorchScript exporter
      (dynamo=False: the dynamo exporter would need onnxscript, which we do not install),
      opset 17, inputs input_ids / attention_mask / token_type_ids (int64, [batch, seq],
      both axes dynamic), output logits [batch, n_labels]. Eager attention: the SDPA path
      traces into a graph the ORT BERT fusions do not recognise, so fused.onnx would keep
      unfused attention and be a weaker peer than ORT users deploy. The exporter imports the
      `onnx` package, which .venv-oracle lacks; it is borrowed from .venv-ort's site-packages,
      appended last to sys.path so every other import still comes from .venv-oracle.
  ort_export.py optimize MODEL_DIR DIR         (in .venv-ort)
      DIR/model.onnx → DIR/fused.onnx (onnxruntime.transformers optimize_model, model_type
      "bert", num_heads and hidden_size from MODEL_DIR/config.json, opt_level 0: the Python
      fusions only — levels 1 and up first run an ORT session pass that imports torch, which
      .venv-ort does not have, and ORT_ENABLE_ALL at session creation does those passes anyway)
      → DIR/int8.onnx (quantize_dynamic, QInt8 weights) and DIR/int8pc.onnx (the same,
      per_channel=True). Each step is skipped when its output
      exists; prints the fused operator counts so a failed fusion shows.
"""

import glob
import json
import os
import sys


def export(model_dir, out):
    if os.path.exists(out):
        print(f"ort_export: {out} exists")
        return
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.extend(glob.glob(os.path.join(here, "..", "..", ".venv-ort", "lib", "python3*",
                                           "site-packages")))
    import torch
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    ids = torch.tensor([[101, 2054, 2003, 1037, 102, 2023, 2003, 102]] * 2, dtype=torch.long)
    mask = torch.ones_like(ids)
    types = torch.tensor([[0] * 5 + [1] * 3] * 2, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes["logits"] = {0: "batch"}
    tmp = out + ".tmp"
    with torch.inference_mode():
        torch.onnx.export(model, (ids, mask, types), tmp, input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=17,
                          do_constant_folding=True, dynamo=False)
    os.replace(tmp, out)
    print(f"ort_export: wrote {out} (torch {torch.__version__})")


def optimize(model_dir, d):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    fused, int8 = os.path.join(d, "fused.onnx"), os.path.join(d, "int8.onnx")
    int8pc = os.path.join(d, "int8pc.onnx")
    if not os.path.exists(fused):
        m = optimize_model(os.path.join(d, "model.onnx"), model_type="bert",
                           num_heads=cfg["num_attention_heads"], hidden_size=cfg["hidden_size"],
                           opt_level=0)
        print(f"ort_export: fused operators {m.get_fused_operator_statistics()}")
        m.save_model_to_file(fused + ".tmp")
        os.replace(fused + ".tmp", fused)
        print(f"ort_export: wrote {fused}")
    if not os.path.exists(int8):
        # ONNX shape inference cannot type the outputs of the fused (com.microsoft) operators;
        # without a default type the quantizer refuses the MatMuls that read them.
        quantize_dynamic(fused, int8 + ".tmp", weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(int8 + ".tmp", int8)
        print(f"ort_export: wrote {int8}")
    if not os.path.exists(int8pc):
        # per output channel, as rerankd's int8 quantizes its weights: the fairer int8 peer
        quantize_dynamic(fused, int8pc + ".tmp", weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(int8pc + ".tmp", int8pc)
        print(f"ort_export: wrote {int8pc}")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("export", "optimize"):
        sys.exit("usage: ort_export.py export MODEL_DIR OUT.onnx | optimize MODEL_DIR DIR")
    (export if sys.argv[1] == "export" else optimize)(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
