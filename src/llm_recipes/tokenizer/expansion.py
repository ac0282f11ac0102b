"""Swallow-style vocabulary expansion of a BPE tokenizer: Japanese pieces learned from a corpus become regular BPE
vocabulary entries with merges appended after the old ones, so the old tokenizer's ids and merges are untouched.

Why appending merges keeps old text as it was: BPE applies the lowest-ranked applicable merge first, so every old
merge runs before any new one, and a new merge only joins tokens that spell part of a Japanese character sequence.
The expanded tokenization of any text is therefore the old tokenization with the new merges applied on top; text
without the new pieces encodes to exactly the same ids. `expand` uses this to decide each new merge in a few
microseconds (the old BPE model's own `tokenize` for the old pieces, then the new merges), which scales to tens of
thousands of candidates.

Swallow extended Llama 2's SentencePiece BPE (32,000 -> 43,176 pieces) with a Japanese BPE trained on its corpus;
here the candidates come from a BPE trained with `tokenizers` using the base tokenizer's own normalizer and
pre-tokenizer, in that tokenizer's merge order (most frequent first), single characters included.
"""

import json
import re

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

# kana, kanji and the marks Japanese words are written with (々 〆 〇 ー)
JAPANESE_TEXT = re.compile(r"^[\u3005-\u3007\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")


def _uses(spec, kind):
    """Whether a tokenizer JSON component (possibly a Sequence) contains a component of type `kind`."""
    if isinstance(spec, dict):
        return spec.get("type") == kind or any(_uses(v, kind) for v in spec.values())
    if isinstance(spec, list):
        return any(_uses(v, kind) for v in spec)
    return False


class PieceText:
    """Maps a BPE vocabulary symbol to the bytes it stands for (byte-level: GPT-2's byte-to-unicode table; char-level
    with byte fallback: the characters, `<0xXX>` pieces as bytes)."""

    def __init__(self, spec):
        self.byte_level = _uses(spec.get("pre_tokenizer"), "ByteLevel")
        self.decoder = _byte_decoder() if self.byte_level else None

    def bytes_of(self, piece):
        if self.byte_level:
            try:
                return bytes(self.decoder[c] for c in piece)
            except KeyError:
                return None
        if re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            return bytes([int(piece[3:5], 16)])
        return piece.encode("utf-8")

    def is_japanese(self, piece):
        """A whole Japanese string, or (byte-level) the leading bytes of one character, which later merges complete
        (a kanji is 3 bytes and the base often knows none of them)."""
        data = self.bytes_of(piece)
        if not data:
            return False
        try:
            return bool(JAPANESE_TEXT.match(data.decode("utf-8")))
        except UnicodeDecodeError:
            pass
        if not self.byte_level:
            return False
        # the leading bytes of one character: a lead byte of kana / kanji (U+3000-U+9FFF) and continuation bytes
        return 0xE3 <= data[0] <= 0xE9 and len(data) < 3 and all(0x80 <= b < 0xC0 for b in data[1:])


def _byte_decoder():
    """GPT-2's bytes_to_unicode table, inverted (the mapping ByteLevel pre-tokenizers use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def train_candidates(spec, texts, vocab_size, min_frequency=2, max_token_length=None):
    """A BPE trained on `texts` with the base tokenizer's normalizer and pre-tokenizer: its vocabulary symbols in id
    (= merge) order."""
    tok = Tokenizer.from_str(json.dumps(spec))
    byte_level = _uses(spec.get("pre_tokenizer"), "ByteLevel")
    tok.model = models.BPE(byte_fallback=not byte_level and bool(spec["model"].get("byte_fallback")))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[],
                                  show_progress=False, max_token_length=max_token_length,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if byte_level else [])
    tok.train_from_iterator(texts, trainer)
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    return [piece for piece, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def apply_merges(tokens, ranks):
    """BPE on a token list with the given {(left, right): rank} merges, lowest rank first."""
    tokens = list(tokens)
    while len(tokens) > 1:
        best = min(((ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(tokens, tokens[1:]))
                    if (a, b) in ranks), default=None)
        if best is None:
            break
        i = best[1]
        tokens[i:i + 2] = [tokens[i] + tokens[i + 1]]
    return tokens


def current_tokens(old, piece, vocab, text):
    """The old BPE model's segmentation of `piece`; with byte fallback, runs of <0xXX> pieces that spell a character
    added since (now in `vocab`) become that character."""
    tokens = [t.value for t in old.tokenize(piece)]
    if text.byte_level:
        return tokens
    out, run = [], b""
    for token in tokens + [None]:
        if token is not None and re.fullmatch(r"<0x[0-9A-F]{2}>", token):
            run += text.bytes_of(token)
            continue
        if run:
            out += _bytes_or_chars(run, vocab)
            run = b""
        if token is not None:
            out.append(token)
    return out


def _bytes_or_chars(data, vocab):
    """UTF-8 bytes as characters where the character is in the vocabulary, else as <0xXX> pieces."""
    out, i = [], 0
    while i < len(data):
        for size in (4, 3, 2, 1):
            chunk = data[i:i + size]
            try:
                char = chunk.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if char in vocab:
                out.append(char)
                i += size
                break
        else:
            out.append(f"<0x{data[i]:02X}>")
            i += 1
    return out


def expand(spec, candidates, num_new_tokens, multiple_of=1):
    """The expanded tokenizer JSON and the new pieces [(symbol, id, old ids it replaces)].

    Each Japanese candidate not in the vocabulary is segmented by the old BPE model plus the merges added so far;
    a candidate that comes out as two tokens gets the merge of those two (it is then reachable), one that comes out
    as more is skipped (its parts come first in merge order, so few are). A character-level BPE with byte fallback
    gets single characters as plain vocabulary entries (they replace their <0xXX> bytes). The count is trimmed so
    that the vocabulary size is a multiple of `multiple_of` where possible."""
    spec = json.loads(json.dumps(spec))
    model = spec["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"vocabulary expansion needs a BPE tokenizer; this one is {model.get('type')}")
    text = PieceText(spec)
    old = Tokenizer.from_str(json.dumps(spec)).model
    vocab = model["vocab"]
    pair_format = bool(model["merges"]) and isinstance(model["merges"][0], list)
    next_id = max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens", []))]) + 1
    size = next_id
    target = num_new_tokens
    if multiple_of > 1 and (size + target) % multiple_of and target > (size + target) % multiple_of:
        target -= (size + target) % multiple_of
    ranks, new, skipped = {}, [], 0
    for piece in candidates:
        if len(new) == target:
            break
        if piece in vocab or not text.is_japanese(piece):
            continue
        if not text.byte_level and len(piece) == 1:  # a character replaces its <0xXX> bytes: no merge needed
            pass
        else:
            parts = apply_merges(current_tokens(old, piece, vocab, text), ranks)
            if len(parts) != 2 or parts[0] + parts[1] != piece:
                skipped += 1
                continue
            ranks[(parts[0], parts[1])] = len(ranks)
        vocab[piece] = next_id
        old_ids = [t.id for t in old.tokenize(piece)]
        new.append((piece, next_id, old_ids))
        next_id += 1
    merges = [list(pair) if pair_format else " ".join(pair) for pair in ranks]
    model["merges"] = list(model["merges"]) + merges
    return spec, new, skipped


def decoded(text_map, piece):
    """A new piece as readable text (fragments of a character shown as their UTF-8 bytes)."""
    data = text_map.bytes_of(piece)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.hex(" ")
