"""Tokenizer metrics on held-out text: characters/bytes per token by language, byte fallback, unknowns, Japanese
vocabulary counts, kanji coverage, tokens per document and round-trip exactness."""

import re

KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
HIRAGANA = re.compile(r"[\u3041-\u309f]")
KATAKANA = re.compile(r"[\u30a0-\u30ff]")
JAPANESE = re.compile(r"[\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
BYTE_PIECE = re.compile(r"^<0x[0-9A-F]{2}>$")


def language_of(text):
    """'ja' when at least 30 % of the non-space characters are kana or kanji, else 'en' (a script test, no model)."""
    chars = [c for c in text if not c.isspace()]
    return "ja" if chars and len(JAPANESE.findall(text)) / len(chars) >= 0.3 else "en"


def byte_encoded_positions(encoding, tokenizer):
    """Character positions that are not inside whole-character tokens: covered by a <0xXX> piece, or by two or more
    tokens (a byte-level BPE splitting one character's UTF-8 bytes)."""
    covered, byte_piece = {}, set()
    for token, (start, end) in zip(encoding.tokens, encoding.offsets):
        for pos in range(start, end):
            covered[pos] = covered.get(pos, 0) + 1
            if BYTE_PIECE.match(token):
                byte_piece.add(pos)
    return byte_piece | {pos for pos, n in covered.items() if n > 1}


def vocabulary_counts(tokenizer):
    counts = {"kanji_tokens": 0, "hiragana_tokens": 0, "katakana_tokens": 0}
    for i in range(len(tokenizer)):
        piece = tokenizer.decode([i])
        if "\ufffd" in piece:
            continue
        counts["kanji_tokens"] += bool(KANJI.search(piece))
        counts["hiragana_tokens"] += bool(HIRAGANA.search(piece))
        counts["katakana_tokens"] += bool(KATAKANA.search(piece))
    return counts


def measure(tokenizer, texts):
    backend = tokenizer.backend_tokenizer
    chars, nbytes, tokens, docs = {}, {}, {}, {}
    byte_chars = total_chars = kanji = kanji_ok = unknown = total_tokens = exact = 0
    unk = tokenizer.unk_token_id
    for text in texts:
        enc = backend.encode(text, add_special_tokens=False)
        lang = language_of(text)
        chars[lang] = chars.get(lang, 0) + len(text)
        nbytes[lang] = nbytes.get(lang, 0) + len(text.encode("utf-8"))
        tokens[lang] = tokens.get(lang, 0) + len(enc.ids)
        docs[lang] = docs.get(lang, 0) + 1
        split = byte_encoded_positions(enc, tokenizer)
        byte_chars += len(split)
        total_chars += len(text)
        for pos, ch in enumerate(text):
            if KANJI.match(ch):
                kanji += 1
                kanji_ok += pos not in split
        unknown += sum(1 for i in enc.ids if unk is not None and i == unk)
        total_tokens += len(enc.ids)
        exact += tokenizer.decode(enc.ids) == text
    n = sum(docs.values())
    if n == 0:
        return {}
    return {
        "vocab_size": len(tokenizer), "eval_documents": docs,
        "chars_per_token": {k: round(chars[k] / max(tokens[k], 1), 3) for k in sorted(chars)},
        "bytes_per_token": {k: round(nbytes[k] / max(tokens[k], 1), 3) for k in sorted(chars)},
        "tokens_per_document": {k: round(tokens[k] / docs[k], 1) for k in sorted(docs)},
        "byte_fallback_rate": round(byte_chars / max(total_chars, 1), 5),
        "unknown_rate": round(unknown / max(total_tokens, 1), 5),
        "kanji_coverage": round(kanji_ok / kanji, 5) if kanji else None,
        "round_trip_exact": exact / n, **vocabulary_counts(tokenizer),
    }


def plot_vocab_sweep(path, results):
    from llm_recipes.reporting.plots import subplots

    sizes = sorted(results)
    fig, ax = subplots(figsize=(6, 4))
    for lang in ("ja", "en"):
        ys = [results[s]["chars_per_token"].get(lang) for s in sizes]
        if any(y is not None for y in ys):
            ax.plot(sizes, ys, marker="o", label=lang)
    ax.set_xscale("log")
    ax.set_xlabel("vocabulary size")
    ax.set_ylabel("characters per token (held-out)")
    ax.set_title("vocabulary-size study")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
