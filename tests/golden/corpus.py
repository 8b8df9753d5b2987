#!/usr/bin/env python3
"""corpus.py — the text corpus behind the golden fixtures and the CPU benchmark inputs.

Everything is available offline and deterministic for a given Python version (the oracle
venv, .venv-oracle, runs CPython 3.11):
  - prose: the Python Language Reference as shipped inside CPython
    (`pydoc_data/topics.py`, the text `help()` shows), merged into passages of 40-200 words,
    plus the docstrings of ~150 standard-library modules and their public classes/functions;
  - adversarial texts: every item of the fidelity spec §2.9 catalogue and more (control
    characters, zero-width/bidi, odd spaces, accents both ways, İ/Σ/ß/ẞ, Hangul, kana, CJK
    incl. the U+2B820/U+2B920 boundary, emoji and ZWJ sequences, fullwidth, math, Unicode 9+
    characters, 100/101-char words, digit and punctuation runs, literal special tokens,
    empty and whitespace-only strings), then seeded random mixtures of them with prose;
  - long texts: runs of passages joined up to 40k characters (several thousand tokens).

Used as a module by make_golden.py and as a CLI by bench/cpu/run.sh:
  python tests/golden/corpus.py prose --bytes 1000000        one passage a line, ~N bytes
  python tests/golden/corpus.py pairs --n 512                 JSONL {"query","doc"}
"""

import argparse
import importlib
import inspect
import json
import random
import re
import sys
import warnings

SEED = 20261128

STDLIB_MODULES = """abc argparse ast asyncio base64 bdb binascii bisect builtins bz2 calendar cmath
cmd code codecs codeop collections colorsys concurrent.futures configparser contextlib
contextvars copy copyreg csv ctypes dataclasses datetime decimal difflib dis doctest email
email.message email.parser email.utils enum filecmp fileinput fnmatch fractions ftplib
functools gc getopt getpass gettext glob graphlib gzip hashlib heapq hmac html html.parser
http http.client http.cookies http.server imaplib importlib inspect io ipaddress itertools
json json.decoder keyword linecache locale logging logging.handlers lzma mailbox math
mimetypes multiprocessing netrc numbers operator optparse os os.path pathlib pdb pickle
pickletools pkgutil platform plistlib poplib pprint profile pstats pydoc queue quopri random
re reprlib rlcompleter runpy sched secrets select selectors shelve shlex shutil signal site
smtplib socket socketserver sqlite3 ssl stat statistics string stringprep struct subprocess
symtable sys sysconfig tabnanny tarfile tempfile textwrap threading time timeit token
tokenize trace traceback tracemalloc types typing unicodedata unittest unittest.mock
urllib.parse urllib.request uuid venv warnings wave weakref webbrowser wsgiref
xml.dom.minidom xml.etree.ElementTree xml.sax xmlrpc.client zipapp zipfile zipimport zlib
zoneinfo""".split()


def topic_passages():
    """Language Reference topics merged into passages of 40-200 words (whitespace collapsed)."""
    import pydoc_data.topics as topics
    rng = random.Random(SEED)
    out = []
    for key in sorted(topics.topics):
        words, target = [], rng.randint(40, 200)
        for para in topics.topics[key].split("\n\n"):
            words.extend(para.split())
            if len(words) >= target:
                out.append(" ".join(words))
                words, target = [], rng.randint(40, 200)
        if len(words) >= 10:
            out.append(" ".join(words))
    return out


def docstrings():
    """Docstrings of STDLIB_MODULES and their public classes, functions and methods, raw
    (newlines and indentation kept), deduplicated, in a fixed order."""
    warnings.simplefilter("ignore")
    seen, out = set(), []

    def add(doc):
        if doc and len(doc.split()) >= 5 and doc not in seen:
            seen.add(doc)
            out.append(doc)

    for name in STDLIB_MODULES:
        mod = importlib.import_module(name)
        add(inspect.getdoc(mod))
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                add(inspect.getdoc(obj))
            if inspect.isclass(obj):
                for mattr, mobj in sorted(vars(obj).items()):
                    if not mattr.startswith("_") and inspect.isfunction(mobj):
                        add(inspect.getdoc(mobj))
    return out


def prose():
    """All prose passages: Language Reference passages first, then docstrings."""
    return topic_passages() + docstrings()


# ---------------------------------------------------------------------------------------
# Adversarial texts

CATALOGUE = [
    # accents, precomposed vs combining; case mappings the spec calls out
    "é", "e\u0301", "É", "E\u0301", "café", "cafe\u0301", "CAFÉ", "naïve résumé Ångström",
    "İstanbul", "İ", "i\u0307", "ΟΔΟΣ", "Σ", "σ ς Σ", "ΣΊΣΥΦΟΣ", "straße", "STRASSE", "ẞ",
    "Straẞe", "ﬁne", "ﬀ ﬃ ﬄ", "Ｈｅｌｌｏ", "ＡＢＣ１２３ｘｙｚ", "Ǆ ǅ ǆ", "Ω Ω", "K K Å Å",
    "Ελληνικὰ γράμματα", "Tiếng Việt có dấu", "Příliš žluťoučký kůň",
    # zero-width, bidi, BOM, soft hyphen (deleted: words join)
    "a\u200bb", "a\u200cb", "a\u200db", "\ufeffhello", "hel\ufefflo", "soft\u00adhyphen",
    "a\u200eb\u200fc", "\u202ertl override\u202c", "\u2066isolate\u2069", "a\u2060b",
    "a\u034fb", "a\u061cb",
    # control characters (deleted) vs whitespace controls (split)
    "a\u000cb", "a\u0085b", "a\u000bb", "a\u0080b\u009fc", "a\u0000b", "a\ufffdb", "\u0000",
    "\ufffd", "a\u0001b\u001fc\u007fd", "tab\tnew\nline\rcr", "a\r\nb",
    # unusual spaces (split)
    "a\u00a0b", "a\u3000b", "a\u2028b", "a\u2029b", "a\u2009b", "a\u1680b", "a\u180eb",
    "a\u200ab", "a\u202fb", "a\u205fb", "a\u2000b\u2001c\u2002d\u2003e\u2004f\u2005g",
    "  leading", "trailing  ", " \t\n\u3000 ", "", " ", "\n", "\t",
    # CJK and other scripts
    "中文", "中文字符测试句子", "日本語のテキストです", "カタカナ", "ひらがなです", "ｶﾀｶﾅ",
    "한국어 텍스트", "한", "안녕하세요 세계", "Москва — столица России", "עברית", "العربية",
    "हिन्दी भाषा", "ภาษาไทย", "ქართული", "Հայերեն", "ܐܪܡܝܐ",
    chr(0x3400) + chr(0x4DBF) + chr(0x4E00) + chr(0x9FFF), "\uf900\ufa6d\U0002f800",
    "x" + chr(0x20000) + chr(0x2A6DF) + chr(0x2A700) + chr(0x2B73F) + "y",
    chr(0x2B740) + chr(0x2B81D) + chr(0x2B81F) + chr(0x2B820),
    "ab" + chr(0x2B820) + chr(0x2B821) + chr(0x2B91F) + chr(0x2B920) + chr(0x2B921) + "cd",
    chr(0x2CEB0) + chr(0x2EBE0) + chr(0x30000) + chr(0x31350),
    # emoji, symbols, math
    "😀", "I ❤ NY", "👨\u200d👩\u200d👧\u200d👦 family", "👍🏽 ok", "🇩🇪🇫🇷", "hello😀world",
    "🏳️\u200d🌈", "©2024 Company™", "€100 or £80 or ¥1000", "x² + y³ = z⁴", "∑∫√∞≠≤≥",
    "α+β=γ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝", "𝟘𝟙𝟚𝟛", "½ ¾ ⅓", "①②③", "→ ← ↔ ⇒", "♠♣♥♦",
    # Unicode 9+ characters (tables differ between Unicode versions)
    "🥇🥈🥉", "🤩🤪", "🥰🥱", "🫠🫡", "🫨🩷", "Ꞻꞻ", "\U0001e900\U0001e922", "Ᲊ", "\u08be",
    "\U0001f9ff", "\u0d04", "\U00016fe0", "\U0001fa70", "\u9fef\u9ff0\u9ffc", "\U000313a0",
    "Ꟑ ꟑ", "\U0001e030",
    # literal special tokens
    "[SEP]", "[CLS]", "[MASK]", "[PAD]", "[UNK]", "[sep]", "[Sep]", "[mask]", "a[SEP]b",
    "hello [MASK] world", "[SEP][SEP][CLS]", "[ SEP ]", "[SEP", "SEP]", "[[SEP]]",
    "[CLS] query [SEP] document [SEP]", "x [MASK]y", "[MASK].",
    # word-length limit (100 characters)
    "a" * 100, "a" * 101, "b" * 99 + "é", "b" * 100 + "é", "e\u0301" * 60,
    "supercalifragilistic" * 5, "supercalifragilistic" * 5 + "x", "word " + "z" * 150 + " end",
    "中" * 120, "ab" * 60 + "!" + "cd" * 10,
    # digits and punctuation runs
    "1" * 50, "3.14159265358979323846264338327950288", "1,234,567,890", "０１２３４",
    "2024-01-01T12:00:00Z", "192.168.0.1", "+1 (555) 123-4567", "!!!???...", "---", "...",
    "@#$%^&*()", "«»„“”‘’", "‽⁇¿¡", "~`|\\", "$$$", "a.b.c", "e-mail", "don't", "U.S.A.",
    "::", "->", "<html><body>x</body></html>", "{\"key\": [1, 2]}", "C:\\path\\to\\file",
    "https://example.com/a?b=c&d=e#f", "user@example.com", "#hashtag @mention",
]

# Characters mixed into prose by the generator (a superset of what the catalogue exercises).
POOL = sorted(set(
    "\u200b\u200c\u200d\ufeff\u00ad\u200e\u200f\u202e\u2066\u000c\u0085\u000b\u0080\u009f"
    "\u0000\ufffd\u0001\u007f\u00a0\u3000\u2028\u2029\u2009\u1680\u180e\u202f\t\n\r"
    "éÉèÀçñøåÆœßẞİıΣσςΩ中文日本語한국어カタナひらが😀❤👍🏽🇩🇪©€™²∑√∞αβγ𝔘𝟘½①→♠"
    "ＡＢＣａｂｃ１２３！？ｶﾀ[]#@$%^&*()!?.,;:'\"-_/\\|~`<>{}+=0123456789"
    "🥇🤩🥰🫠Ꞻ\U0001e900\u08be" + chr(0x2B81F) + chr(0x2B820) + chr(0x2B920)
    + "\u0301\u0308\u0327"))


def adversarial(prose_passages, n_mixed=700, n_soup=300):
    """CATALOGUE, then seeded mixtures: prose with pool characters inserted, replaced or
    appended; random 'soup' strings of pool characters and letters; special tokens glued to
    words; words at the length limit."""
    rng = random.Random(SEED + 1)
    out = list(CATALOGUE)
    short = [p for p in prose_passages if len(p) < 400]
    for _ in range(n_mixed):
        s = list(rng.choice(short))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(s) + 1)
            op = rng.random()
            c = rng.choice(POOL)
            if op < 0.6:
                s.insert(pos, c)
            elif pos < len(s):
                s[pos] = c
            else:
                s.append(c)
        if rng.random() < 0.1:
            s.insert(rng.randrange(len(s) + 1), rng.choice(["[SEP]", "[MASK]", "[CLS]", "[sep]"]))
        out.append("".join(s))
    letters = "abcdefghijklmnopqrstuvwxyz ABCXYZ   "
    for _ in range(n_soup):
        k = rng.randint(1, 60)
        out.append("".join(rng.choice(POOL) if rng.random() < 0.5 else rng.choice(letters)
                           for _ in range(k)))
    for k in (98, 99, 100, 101, 102):
        for c in ("a", "é", "e\u0301", "中", "1"):
            out.append("x " + c * k + " y")
    return out


def long_texts(prose_passages, sizes=(2000, 3000, 5000, 8000, 12000, 20000, 40000)):
    """Runs of consecutive passages joined with blank lines, cut at a word boundary near each
    size in characters; two per size from different starting points."""
    rng = random.Random(SEED + 2)
    out = []
    for size in sizes:
        for _ in range(2):
            i = rng.randrange(len(prose_passages))
            parts, n = [], 0
            while n < size:
                p = prose_passages[i % len(prose_passages)]
                parts.append(p)
                n += len(p) + 2
                i += 1
            text = "\n\n".join(parts)[:size]
            out.append(text[:text.rfind(" ")] if " " in text else text)
    return out


# ---------------------------------------------------------------------------------------
# Queries and pairs

def query_from(passage, rng):
    """A short query taken from a passage: 4-12 of its first words, sometimes as a question."""
    words = re.sub(r"[^\w\s'-]", " ", passage).split()
    k = min(len(words), rng.randint(4, 12))
    q = " ".join(words[:k])
    r = rng.random()
    if r < 0.3:
        q = "what is " + q + "?"
    elif r < 0.45:
        q = "how does " + q + " work"
    return q


def bench_pairs(prose_passages, n, q_words=(7, 12), d_words=(50, 75)):
    """n (query, passage) pairs for the benchmark: ~16-token queries, ~100-token passages
    (word counts chosen for the Python docs' mix of words and punctuation)."""
    rng = random.Random(SEED + 3)
    flat = [p.split() for p in prose_passages if len(p.split()) >= d_words[1]]
    pairs = []
    for _ in range(n):
        src = rng.choice(flat)
        q = " ".join(rng.choice(flat)[:rng.randint(*q_words)])
        start = rng.randrange(len(src) - d_words[0] + 1)
        d = " ".join(src[start:start + rng.randint(*d_words)])
        # Docstrings with code are token-dense; the cap keeps passages near 100 tokens so no
        # batch pads to 512 because of one outlier.
        d = d[:600].rsplit(" ", 1)[0] if len(d) > 600 else d
        pairs.append((q, d))
    return pairs


def main():
    ap = argparse.ArgumentParser(description="golden/bench text corpus")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prose", help="one passage a line (newlines folded), about --bytes")
    p.add_argument("--bytes", type=int, default=1_000_000)
    q = sub.add_parser("pairs", help="JSONL query/doc pairs for the engine benchmark")
    q.add_argument("--n", type=int, default=512)
    args = ap.parse_args()
    passages = prose()
    if args.cmd == "prose":
        total = 0
        for text in passages:
            line = " ".join(text.split())
            sys.stdout.write(line + "\n")
            total += len(line.encode()) + 1
            if total >= args.bytes:
                break
    else:
        for qq, dd in bench_pairs(passages, args.n):
            sys.stdout.write(json.dumps({"query": qq, "doc": dd}) + "\n")


if __name__ == "__main__":
    main()
