#!/usr/bin/env python3
"""make_unigram_ties.py — writes tests/golden/unigram_ties.json: a small Unigram tokenizer.json
whose Viterbi near-ties resolve differently depending on how the scores are parsed, and the
ids Hugging Face gives for runs of "=" under both of rerankd's XLM-R pipelines.

Why: the tokenizers library reads tokenizer.json with serde_json's default float parser,
which rounds 17-digit decimals twice (to a u64, then a division by a power of ten) and lands
an ulp away from the correctly rounded value for about one score in six; transformers >= 5
reads the same file with Python's json (correctly rounded) and rebuilds the tokenizer. The
pieces and scores below come from a SentencePiece model trained on Python's documentation,
where "=" underlines give exactly such ties (sums equal up to the last bit).

  file           tokenizers.Tokenizer.from_file (the file as written; serde scores)
  transformers   tokenizers' Unigram built from the Python-parsed vocabulary, with
                 WhitespaceSplit + Metaspace, as transformers' XLMRobertaTokenizer does

Run in .venv-oracle:  python tests/golden/make_unigram_ties.py
"""
import json
import os

from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import Unigram

VOCAB = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0],
         ["\u2581", -2.393615484237671], ["\u2581=", -4.453596115112305],
         ["=", -5.440608501434326], ["=" * 16, -9.849602699279785],
         ["=" * 12, -10.180877685546875], ["=" * 14, -10.419261932373047],
         ["<mask>", 0.0]]


def tokenizer_json():
    added = [{"id": i, "content": c, "single_word": False, "lstrip": c == "<mask>",
              "rstrip": False, "normalized": False, "special": True}
             for i, c in ((0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (10, "<mask>"))]
    pair = [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "</s>", "type_id": 0}},
            {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}},
            {"SpecialToken": {"id": "</s>", "type_id": 0}}]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                          "split": True},
        "post_processor": {
            "type": "TemplateProcessing", "single": pair[:3], "pair": pair,
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                               "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        "decoder": None,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": VOCAB, "byte_fallback": False},
    }


def main():
    text = json.dumps(tokenizer_json(), ensure_ascii=False)
    file_tok = Tokenizer.from_str(text)
    tf_tok = Tokenizer(Unigram([tuple(v) for v in json.loads(text)["model"]["vocab"]], unk_id=3))
    tf_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(),
         pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")])
    cases, n_differ = [], 0
    for n in range(1, 121):
        t = "=" * n
        a = file_tok.encode(t, add_special_tokens=False).ids
        b = tf_tok.encode(t, add_special_tokens=False).ids
        n_differ += a != b
        cases.append({"text": t, "ids": a, "ids_transformers": b})
    assert n_differ > 0, "no case separates the two score parsers any more"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unigram_ties.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"tokenizer_json": text, "cases": cases}, f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}: {len(cases)} texts, {n_differ} where the two pipelines differ")


if __name__ == "__main__":
    main()
