#!/usr/bin/env python3
"""xlmr_corpus.py — the multilingual training text of the XLM-R test tokenizer (make_models.py).

The xlmr-* test models need a SentencePiece Unigram vocabulary trained here, offline. Its
training text is generated from what this file holds, never from the running Python's own
documentation (tests/golden/corpus.py uses CPython's docstrings, which change between
3.11.x releases: CI's Debian python3 would then train a different vocabulary than the one
the committed golden files were written with). Only `random.Random(seed)` (`random()`,
`randrange`, `choice`, `choices` are stable across CPython 3.x) and the literals below are
used; make_models.py also checks the sha256 of the result, so any drift fails loudly
instead of silently producing other token ids.

Content: for ~25 languages a list of common words (written from general knowledge, not
copied from any corpus), sampled with Zipf-like weights into sentences; for ~20 further
scripts pseudo-words built from each script's letters (fixed code point lists); numbers,
dates, URLs, code-like and punctuation-heavy lines, emoji. Texts in tests/golden/xlmr_*
are written separately (tests/golden/make_golden_xlmr.py) and checked not to be lines of
this corpus.

Usage: python scripts/xlmr_corpus.py [--stats]        prints the lines (or their statistics)
"""

import argparse
import hashlib
import random
import sys

SEED = 20261205

# Common words, roughly by frequency (the first words are drawn most often). Languages
# written without spaces between words (zh, ja, th) are joined without them.
WORDS = {
    "en": "the of and to in is that it was for on are as with his they at be this from have "
          "or by one had not but what all were when we there can an your which their said if "
          "do will each about how up out them then she many some so these would other into has "
          "more her two like him see time could no make than first been its who now people my "
          "made over did down only way find use may water long little very after words called "
          "just where most know get through back much before go good new write our used me man "
          "too any day same right look think also around another came come work three word "
          "must because does part even place well such here take why things help put years "
          "different away again off went old number great tell men say small every found still "
          "between name should home big give air line set own under read last never us left end "
          "along while might next sound below saw something thought both few those always looked "
          "show large often together asked house world going want school important until form "
          "food keep children feet land side without boy once animals life enough took sometimes "
          "four head above kind began almost live page got earth need far hand high year mother "
          "light parts country father let night following picture being study second eyes soon "
          "times story boys since white days ever paper hard near sentence better best across "
          "during today others however sure means knew try told young miles sun ways thing whole "
          "hear example heard several change answer room sea against top turned learn point city "
          "play toward five using himself usually money seen car morning given river population "
          "museum inhabitants registered visitors reranker query document passage search engine "
          "retrieval relevance score model server request latency throughput token",
    "fr": "le de un être et à il avoir ne je son que se qui ce dans en du elle au pour pas vous "
          "par sur faire plus dire me on mon lui nous comme mais pouvoir avec tout y aller voir "
          "bien où sans tu ou leur homme si deux mari moi vouloir te femme venir quand grand "
          "celui notre devoir là jour prendre même votre rien petit encore aussi quelque dont "
          "tout mer trouver donner temps ça peu même falloir sous parler alors autre chose ville "
          "été très déjà après année français école élève société première où garçon cœur "
          "naïve réservé hôpital forêt château fenêtre Noël Ça œuvre",
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als "
          "auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem "
          "über einen so zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei "
          "Jahr Zeit Mann Frau Kind Stadt Land Straße größer schön müssen können Mädchen über "
          "Fußball Bäume Häuser Grüße weiß groß Äpfel Öl Übung heißen Wasser Arbeit",
    "es": "de la que el en y a los se del las un por con no una su para es al lo como más o "
          "pero sus le ha me si sin sobre este ya entre cuando todo esta ser son dos también "
          "fue había era muy años hasta desde está mi porque qué sólo han yo hay vez puede "
          "todos así nos ni parte tiene él uno donde bien tiempo mismo ese ahora cada e vida "
          "otro después te otros aunque esa eso hace otra gobierno tan durante siempre día "
          "niño mañana España corazón canción información ¿Dónde está? ¡Hola!",
    "pt": "de a o que e do da em um para é com não uma os no se na por mais as dos como mas "
          "foi ao ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo "
          "pela até isso ela entre era depois sem mesmo aos ter seus quem nas me esse eles "
          "estão você tinha foram essa num nem suas meu às minha têm numa pelos elas havia "
          "coração ação nação informação São Paulo João irmã pão",
    "it": "di e il la che a per un in è del non una i le si con da sono al lo della come ma "
          "più anche ha dei nel se gli mi ci questo essere alla o ho tutto cosa suo fatto "
          "città perché però così già più università caffè",
    "nl": "de en van ik te dat die in een hij het niet zijn is was op aan met als voor had er "
          "maar om hem dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit "
          "der daar haar naar heb hoe heeft hebben deze u want nog zal me zij nu ge geen omdat",
    "pl": "się i w nie na z to że do jest jak o co ale tak po jego za od już jej ja tylko być "
          "przez może czy był ten jako mnie dla są ich gdy kiedy sobie bardzo będzie miał "
          "żeby też nawet jeszcze ona teraz tego który tym pan wszystko mój dzień życie "
          "źródło gęś łódź książka wieś Kraków",
    "cs": "a se na v je to že s z do o i jsem k ve by jako ale tak pro jsou jak po od už ten "
          "mi tam co jeho jen byl bude když který není můj příliš žluťoučký kůň úpěl ďábelské "
          "ódy řeka čas škola",
    "tr": "bir ve bu da de için ile çok ne gibi daha o ama ben sen ki var en olarak kadar her "
          "sonra şey iyi yok değil zaman büyük göre ilk kendi yeni olan önce şimdi İstanbul "
          "ılık ışık güzel öğrenci çocuk dünya",
    "vi": "của và có các là được trong cho người với không một những này đã để khi đến từ "
          "nhiều theo về như ra nhà năm làm cũng tại đó sẽ thì đi vào nước Việt Nam tiếng "
          "học sinh thành phố Hà Nội Hồ Chí Minh",
    "ru": "и в не на я быть он с что а по это она этот к но они мы как из у который то за "
          "свой что весь год от так о для ты же все тот мочь вы человек такой его сказать "
          "только или ещё бы себя один как уже до время если сам когда другой вот говорить "
          "наш мой знать стать при чтобы дело жизнь кто первый очень два день её новый рука "
          "даже во со раз где там под можно ну какой после их работа без самый потом надо "
          "хотеть ли слово идти большой должен место иметь ничто Москва Россия столица город",
    "uk": "і в не на що з я та це до він як але за так у її ви від ми його вона був про коли "
          "вже тільки мене бути для все якщо їх є Київ Україна їжа ґанок",
    "bg": "и в на да се не е за от че с по го ще са тя той как но ми си аз така като при",
    "el": "και το να η ο της του σε με τα για που την θα είναι δεν από τον ένα στο στην "
          "των οι μια αλλά στη είχε πολύ ή όταν τι όλα ήταν έχει μου έτσι Αθήνα Ελλάδα "
          "άνθρωπος ώρα ευχαριστώ καλημέρα ψυχή ΟΔΟΣ Σίσυφος",
    "ar": "في من على أن إلى عن مع هذا التي الذي كان ما لا هذه هو ذلك بين كل قد أو عند بعد "
          "كما ثم حتى لم إن عام يوم الله العربية مصر القاهرة كتاب مدرسة",
    "he": "של את על לא זה הוא עם כל גם היא אני מה יש או אבל כי אם היה הם רק עוד ירושלים "
          "ישראל ספר בית",
    "fa": "و در به از که این را با است برای آن یک خود تا کرد بر هم نیز شده ایران تهران",
    "hi": "के है में की और को से एक यह पर भी नहीं कि था हैं लिए कर होता इस तो ने जो हो "
          "गया कुछ वह साथ भारत दिल्ली हिन्दी भाषा पानी",
    "bn": "এবং এই একটি করে থেকে হয় জন্য না তার কিন্তু বাংলা ভাষা ঢাকা",
    "ta": "ஒரு மற்றும் இந்த என்று அது தமிழ் மொழி சென்னை",
    "th": "ที่ การ ใน และ เป็น ของ มี ได้ ไม่ จะ ให้ ว่า มา คน ไป ความ กับ แล้ว ภาษาไทย "
          "กรุงเทพ ประเทศไทย สวัสดี",
    "zh": "的 一 是 不 了 人 我 在 有 他 这 个 们 中 来 上 大 为 和 国 地 到 以 说 时 要 就 出 "
          "会 可 也 你 对 生 能 而 子 那 得 于 着 下 自 之 年 过 发 后 作 里 用 道 行 所 然 家 "
          "种 事 成 方 多 经 么 去 法 学 如 都 同 现 当 没 动 面 起 看 定 天 分 还 进 好 小 "
          "部 其 些 主 样 理 心 她 本 前 开 但 因 只 从 想 实 北京 中国 人口 城市 博物馆",
    "ja": "の に は を た が で て と し れ さ ある いる も する から な こと として い や れる "
          "など なっ ない この ため その あっ よう また もの という あり まで られ なる へ か "
          "だ これ によって により おり より による ず なり られる において 東京 日本語 "
          "カタカナ ひらがな 漢字 テキスト です ます",
    "ko": "이 그 저 것 수 등 들 및 있다 하다 되다 없다 않다 같다 우리 나 너 한국 서울 "
          "사람 시간 한국어 텍스트 안녕하세요 세계",
    "ka": "და არის რომ ეს ის ერთი საქართველო თბილისი ენა",
    "hy": "և է որ այդ մի նա Հայաստան Երևան լեզու",
}
NO_SPACE = {"zh", "ja", "th"}
END_PUNCT = {"zh": "。", "ja": "。", "ar": ".", "fa": ".", "hi": "।", "bn": "।", "el": "."}

# Scripts without a word list: pseudo-words from the code points [lo, hi) (a few of them
# unassigned or marks: harmless, the tokenizer just sees them as rarer characters).
SCRIPT_RANGES = {
    "ethiopic": (0x1200, 0x1248), "tibetan": (0x0F40, 0x0F6C), "khmer": (0x1780, 0x17B3),
    "myanmar": (0x1000, 0x102A), "sinhala": (0x0D85, 0x0D96), "gujarati": (0x0A85, 0x0A8D),
    "gurmukhi": (0x0A15, 0x0A28), "telugu": (0x0C15, 0x0C28), "kannada": (0x0C95, 0x0CA8),
    "malayalam": (0x0D15, 0x0D28), "lao": (0x0E81, 0x0E83), "cherokee": (0x13A0, 0x13F5),
    "mongolian": (0x1820, 0x1877), "syriac": (0x0710, 0x072F), "thaana": (0x0780, 0x07A5),
    "hangul_syllables": (0xAC00, 0xAD00), "cjk_rare": (0x5000, 0x5100),
    "katakana": (0x30A1, 0x30FA), "hiragana": (0x3041, 0x3096), "armenian": (0x0561, 0x0586),
    "georgian": (0x10D0, 0x10F0), "coptic": (0x2C80, 0x2CB0), "runic": (0x16A0, 0x16EA),
    "greek_ext": (0x1F00, 0x1F15), "latin_ext": (0x0100, 0x017F), "cyrillic_ext": (0x0400, 0x045F),
}

EMOJI = ("😀 😂 🥰 😎 🤔 👍 👍🏽 🙏 🎉 🔥 ❤️ ✨ 🚀 🌍 🇩🇪 🇯🇵 🇧🇷 👨‍👩‍👧 🏳️‍🌈 ☕ 🍕 ⚽ 📚 "
         "💡 ✅ ❌ ⭐ 🐍").split()
SYMBOLS = list("©®™°±×÷€£¥₹₽§¶•…–—‘’“”«»‹›¿¡‰′″√∞≈≠≤≥∑∫∂πΩµ←→↑↓⇒♠♣♥♦")
FULLWIDTH = "ＡＢＣＤＥａｂｃｄｅ０１２３４５６７８９！？（）［］｛｝：；，．＠＃％＆"
COMPAT = list("ﬁﬂﬀﬃﬄ①②③④⑤⑩㎏㎞㎝㎡㈱℡№™½¼¾²³¹⁰⁴ⅠⅡⅢⅣ")

CODE_WORDS = ("def class return import from self None True False int float str list dict for "
              "while if else elif try except with as lambda yield async await print len range "
              "printf malloc free struct void const char size_t uint8_t NULL #include std::vector "
              "auto template typename nullptr function var let const => console.log "
              "SELECT FROM WHERE JOIN GROUP BY ORDER LIMIT http https www .com .org .html json "
              "api_key user_id max_length batch_size n_tok d_model cu_seqlens "
              "rr_engine_init").split()


def _zipf_sampler(rng, words):
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(words))]
    return lambda k: rng.choices(words, weights=weights, k=k)


def _pseudo_lexicon(rng, lo, hi, n=200):
    letters = [chr(c) for c in range(lo, hi)]
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, 5))) for _ in range(n)]


def _number(rng):
    r = rng.random()
    if r < 0.3:
        return str(rng.randint(0, 100))
    if r < 0.5:
        return f"{rng.randint(1900, 2030)}"
    if r < 0.7:
        return f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}"
    if r < 0.85:
        return f"{rng.randint(0, 999)}.{rng.randint(0, 99)}"
    return f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1990, 2030)}"


def _sentence(rng, lang, draw):
    words = draw(rng.randint(4, 18))
    for _ in range(rng.randint(0, 2)):
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), _number(rng))
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words) + 1), rng.choice(EMOJI))
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words) + 1), rng.choice(SYMBOLS))
    if lang in NO_SPACE:
        s = "".join(words)
        if rng.random() < 0.3:
            cut = rng.randrange(1, len(s))
            s = s[:cut] + ("、" if lang != "th" else " ") + s[cut:]
    else:
        if len(words) > 6 and rng.random() < 0.4:
            words[rng.randrange(1, len(words) - 1)] += ","
        s = " ".join(words)
    if s[:1].islower() and rng.random() < 0.8:
        s = s[0].upper() + s[1:]
    return s + END_PUNCT.get(lang, rng.choice(".....?!"))


def _misc_line(rng, lex):
    r = rng.random()
    if r < 0.25:  # code-like
        return " ".join(rng.choice(CODE_WORDS) + rng.choice(["", "", "(", ")", ":", ";", "()",
                                                             ".", "_", "[0]"])
                        for _ in range(rng.randint(3, 12)))
    if r < 0.4:  # URLs, mail, paths
        host = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        return rng.choice([f"https://www.{host}.com/{host}/index.html?id={rng.randint(1, 999)}",
                           f"{host}@example.org", f"/usr/local/{host}/bin", f"C:\\Users\\{host}",
                           f"#{host} @{host}_{rng.randint(1, 99)}"])
    if r < 0.55:  # fullwidth and compatibility characters
        return "".join(rng.choice(FULLWIDTH + "".join(COMPAT)) for _ in range(rng.randint(2, 15)))
    if r < 0.7:  # emoji and symbols between words
        words = rng.choice(list(WORDS.values())).split()
        return " ".join(rng.choice(words) if rng.random() < 0.6 else
                        rng.choice(EMOJI + SYMBOLS) for _ in range(rng.randint(3, 10)))
    # pseudo-words of a script without a word list
    name = rng.choice(sorted(lex))
    return " ".join(rng.choice(lex[name]) for _ in range(rng.randint(3, 12))) + "."


def lines(n_per_lang=1500, n_misc=8000):
    """The training lines, in a fixed order: n_per_lang sentences for each language of WORDS
    (English three times as many: the bulk of a reranker's input), then n_misc lines of
    code, URLs, fullwidth/compatibility characters, emoji and the scripts of SCRIPT_RANGES."""
    rng = random.Random(SEED)
    out = []
    for lang in sorted(WORDS):
        draw = _zipf_sampler(rng, WORDS[lang].split())
        for _ in range(n_per_lang * (3 if lang == "en" else 1)):
            out.append(_sentence(rng, lang, draw))
    lex = {name: _pseudo_lexicon(rng, lo, hi) for name, (lo, hi) in sorted(SCRIPT_RANGES.items())}
    for _ in range(n_misc):
        out.append(_misc_line(rng, lex))
    return out


def sha256(text_lines):
    h = hashlib.sha256()
    for t in text_lines:
        h.update(t.encode("utf-8") + b"\n")
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stats", action="store_true")
    args = ap.parse_args()
    text = lines()
    if args.stats:
        n_bytes = sum(len(t.encode()) + 1 for t in text)
        print(f"{len(text)} lines, {n_bytes} bytes, {len(set(''.join(text)))} distinct "
              f"characters, sha256 {sha256(text)}")
        return
    for t in text:
        sys.stdout.write(t + "\n")


if __name__ == "__main__":
    main()
