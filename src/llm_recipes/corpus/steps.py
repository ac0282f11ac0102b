"""datatrove pipeline steps that datatrove lacks for Japanese: offline language ID, Unicode normalization, Japanese quality
rules, Japanese PII masking, character-n-gram MinHash shingles and exact-Jaccard verification of MinHash candidates,
counted sentence dedup, a reader that accounts for invalid lines, a wrapper that applies a filter to some languages
only, and fastText filtering with a local model read in place."""

import contextlib
import dataclasses
import json
import os
import re
import unicodedata
from collections import deque

import numpy as np
import xxhash
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import SENTINEL, MinhashDedupSignature
from datatrove.pipeline.dedup.sentence_dedup import SentenceDedupFilter
from datatrove.pipeline.filters import FastTextClassifierFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.formatters.pii import PIIFormatter, PIIReplacer
from datatrove.pipeline.readers import JsonlReader
from datatrove.utils.hashes.xxhash import xxhash32, xxhash64
from datatrove.utils.text import DEF_TEXT_NORM_CONFIG, simplify_text
from datatrove.utils.typeshelper import StatHints

LINGUA_CODES = {"ja": "JAPANESE", "en": "ENGLISH", "zh": "CHINESE", "ko": "KOREAN", "fr": "FRENCH", "de": "GERMAN",
                "es": "SPANISH", "it": "ITALIAN", "pt": "PORTUGUESE", "ru": "RUSSIAN", "nl": "DUTCH", "vi": "VIETNAMESE",
                "th": "THAI", "id": "INDONESIAN", "ar": "ARABIC", "hi": "HINDI", "tr": "TURKISH", "pl": "POLISH"}


class LinguaLanguageFilter(BaseFilter):
    """Language ID with lingua (its models ship in the wheel: no download). Keeps documents whose top language is in
    `languages` with confidence >= `threshold`; writes `language` and `language_score` to the metadata."""

    name = "🌍 Language ID (lingua)"

    def __init__(self, languages=("ja", "en"), threshold=0.5, thresholds=None, candidates=tuple(LINGUA_CODES),
                 exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.languages, self.threshold, self.candidates = list(languages), threshold, list(candidates)
        self.thresholds = dict(thresholds or {})
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            from lingua import Language, LanguageDetectorBuilder

            langs = [getattr(Language, LINGUA_CODES[c]) for c in self.candidates]
            self._detector = LanguageDetectorBuilder.from_languages(*langs).build()
        return self._detector

    def filter(self, doc):
        values = self.detector.compute_language_confidence_values(doc.text[:2000])
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        doc.metadata["language"], doc.metadata["language_score"] = code, round(best.value, 4)
        if code not in self.languages:
            return False, f"language_{code}"
        if best.value < self.thresholds.get(code, self.threshold):
            return False, "low_confidence"
        return True


class UnicodeNormalizer(BaseFormatter):
    """Unicode normalization (NFKC unifies full-/half-width forms), line-end and blank-line cleanup."""

    name = "🔤 Unicode normalize"

    def __init__(self, form="NFKC"):
        super().__init__()
        self.form = form

    def format(self, text):
        if self.form:
            text = unicodedata.normalize(self.form, text)
        text = re.sub(r"[ \t\u3000]+\n", "\n", text.replace("\r\n", "\n"))
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def text_normalizers(fix_encoding=True, form="NFKC"):
    """The corpus stage's text preparation (also what the quality classifier trains on): ftfy fixes mojibake and
    applies the Unicode form itself (datatrove's FTFYFormatter; NFKC unifies full-/half-width forms), then line ends
    are tidied; without ftfy, UnicodeNormalizer applies the form."""
    from datatrove.pipeline.formatters import FTFYFormatter

    form = form or None
    return [FTFYFormatter(normalization=form), UnicodeNormalizer(None)] if fix_encoding else [UnicodeNormalizer(form)]


HIRAGANA = re.compile(r"[\u3041-\u309f]")
KATAKANA = re.compile(r"[\u30a0-\u30ff]")
JAPANESE = re.compile(r"[\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f]")
SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
ELLIPSIS = ("…", "...", "・・・")


def dup_char_ngram_frac(text, n):
    """Share of character positions covered by character n-grams that occur more than once."""
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    if not grams:
        return 0.0
    counts = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    covered = [False] * len(text)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i:i + n] = [True] * n
    return sum(covered) / len(text)


class JapaneseQualityFilter(BaseFilter):
    """Japanese rules in the spirit of the Swallow corpus, HojiChar and llm-jp-corpus. Any rule is off when None.

    Character classes (hiragana >= min_hiragana_frac, katakana <= max_katakana_frac, Japanese chars), sentence lengths
    (mean within [min, max], longest <= max_sentence_length), kuten rarity (characters per 。), ellipsis-ending lines,
    duplicated character n-grams, and the share of characters inside NG words (list file, one word per line)."""

    name = "🗾 Japanese quality"

    def __init__(self, min_hiragana_frac=0.2, max_katakana_frac=0.5, min_japanese_frac=0.5, min_length=30,
                 min_mean_sentence_length=20, max_mean_sentence_length=90, max_sentence_length=200,
                 max_chars_per_kuten=250, max_ellipsis_line_frac=0.2, dup_char_ngram=10, max_dup_char_ngram_frac=0.5,
                 ng_words_file=None, max_ng_word_char_frac=0.05, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.min_hiragana_frac, self.max_katakana_frac, self.min_japanese_frac = (
            min_hiragana_frac, max_katakana_frac, min_japanese_frac)
        self.min_length, self.max_sentence_length = min_length, max_sentence_length
        self.min_mean_sentence_length, self.max_mean_sentence_length = min_mean_sentence_length, max_mean_sentence_length
        self.max_chars_per_kuten, self.max_ellipsis_line_frac = max_chars_per_kuten, max_ellipsis_line_frac
        self.dup_char_ngram, self.max_dup_char_ngram_frac = dup_char_ngram, max_dup_char_ngram_frac
        self.ng_words = load_word_list(ng_words_file) if ng_words_file else []
        self.max_ng_word_char_frac = max_ng_word_char_frac

    def filter(self, doc):
        text = re.sub(r"\s", "", doc.text)
        n = max(len(text), 1)
        sentences = [s for s in (x.strip() for x in SENTENCE_END.split(doc.text)) if s]
        lengths = [len(s) for s in sentences] or [0]
        lines = [line for line in doc.text.split("\n") if line.strip()]
        checks = [
            (self.min_length, lambda: len(text) < self.min_length, "too_short"),
            (self.min_japanese_frac, lambda: len(JAPANESE.findall(text)) / n < self.min_japanese_frac, "japanese_frac"),
            (self.min_hiragana_frac, lambda: len(HIRAGANA.findall(text)) / n < self.min_hiragana_frac, "hiragana_frac"),
            (self.max_katakana_frac, lambda: len(KATAKANA.findall(text)) / n > self.max_katakana_frac, "katakana_frac"),
            (self.max_sentence_length, lambda: max(lengths) > self.max_sentence_length, "sentence_length"),
            (self.min_mean_sentence_length, lambda: sum(lengths) / len(lengths) < self.min_mean_sentence_length,
             "mean_sentence_length"),
            (self.max_mean_sentence_length, lambda: sum(lengths) / len(lengths) > self.max_mean_sentence_length,
             "mean_sentence_length"),
            (self.max_chars_per_kuten, lambda: n / (text.count("。") + 1) > self.max_chars_per_kuten, "rare_kuten"),
            (self.max_ellipsis_line_frac, lambda: sum(line.rstrip().endswith(ELLIPSIS) for line in lines)
             / max(len(lines), 1) > self.max_ellipsis_line_frac, "ellipsis"),
            (self.max_dup_char_ngram_frac, lambda: dup_char_ngram_frac(text, self.dup_char_ngram)
             > self.max_dup_char_ngram_frac, "dup_char_ngrams"),
            (self.ng_words or None, lambda: sum(text.count(w) * len(w) for w in self.ng_words) / n
             > self.max_ng_word_char_frac, "ng_words"),
        ]
        for threshold, failed, reason in checks:
            if threshold is not None and failed():
                return False, reason
        return True


def load_word_list(path):
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip() and not w.startswith("#")]


# Japanese phone numbers: +81 forms, mobile (070/080/090), toll-free (0120/0800), landlines (0X-XXXX-XXXX etc.)
JP_PHONE = (r"(?<![\d-])(?:\+81[- ]?\d{1,4}[- ]?\d{1,4}[- ]?\d{4}|0(?:120|800)[- ]?\d{2,3}[- ]?\d{3,4}"
            r"|0[789]0[- ]?\d{4}[- ]?\d{4}|0\d{1,4}[- ]\d{1,4}[- ]\d{4})(?![\d-])")
JP_POSTAL = r"〒\s?\d{3}-?\d{4}"
NOT_AFTER_DIGITS, NOT_BEFORE_DIGITS = r"(?<![\d-])(?<!\d[- ])", r"(?![\d-])(?![- ]\d)"  # whole numbers only
MY_NUMBER = NOT_AFTER_DIGITS + r"\d{4}[- ]?\d{4}[- ]?\d{4}" + NOT_BEFORE_DIGITS
CREDIT_CARD = NOT_AFTER_DIGITS + r"(?:\d[- ]?){12,18}\d" + NOT_BEFORE_DIGITS


def my_number_valid(s):
    """Check digit of Japan's 12-digit Individual Number (My Number)."""
    digits = [int(c) for c in s if c.isdigit()]
    if len(digits) != 12:
        return False
    body = digits[:11][::-1]
    total = sum(d * (n + 1 if n <= 6 else n - 5) for n, d in enumerate(body, start=1))
    check = 0 if total % 11 <= 1 else 11 - total % 11
    return check == digits[11]


def luhn_valid(s):
    digits = [int(c) for c in s if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
    return total % 10 == 0


EMAIL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"


class PIIMasker(PIIFormatter):
    """datatrove's PIIFormatter (emails, public IPs) plus Japanese phone numbers; counts documents masked per kind."""

    name = "📞 PII (emails, IPs, cards, My Number, postal codes, Japanese phones)"

    def __init__(self, email_replacement="<EMAIL>", ip_replacement="<IP>", phone_replacement="<PHONE>",
                 postal_code_replacement="〒<POSTAL_CODE>", my_number_replacement="<MY_NUMBER>",
                 credit_card_replacement="<CREDIT_CARD>"):
        super().__init__(email_replacement=email_replacement, ip_replacement=ip_replacement)
        # datatrove's email pattern starts with \b, which never matches after a Japanese character (\w in Python)
        self.emails_replacer = PIIReplacer(EMAIL, email_replacement)
        # order matters: card and My Number (validated) before phone numbers, whose digit groups they contain
        self.replacers = [("email", self.emails_replacer), ("ip", self.ip_replacer),
                          ("credit_card", PIIReplacer(CREDIT_CARD, credit_card_replacement, luhn_valid)),
                          ("my_number", PIIReplacer(MY_NUMBER, my_number_replacement, my_number_valid)),
                          ("postal_code", PIIReplacer(JP_POSTAL, postal_code_replacement)),
                          ("phone", PIIReplacer(JP_PHONE, phone_replacement))]

    def format(self, text):
        for kind, replacer in self.replacers:
            masked = replacer.replace(text)
            if masked != text:
                self.stat_update(f"{kind}_masked")
            text = masked
        return text


class OnlyLanguages(BaseFilter):
    """Applies `step` (a datatrove filter) to documents whose metadata `language` is in `languages`; others pass."""

    def __init__(self, step, languages, exclusion_writer=None):
        self.step, self.languages = step, set(languages)
        self.name = f"{step.name} [{','.join(sorted(self.languages))}]"
        super().__init__(exclusion_writer)

    def filter(self, doc):
        if doc.metadata.get("language") not in self.languages:
            return True
        return self.step.filter(doc)


def char_ngrams(text, n, norm_config=DEF_TEXT_NORM_CONFIG):
    """The shingles of CharNgramMinhashSignature: character n-grams of the simplified text (datatrove's simplify_text:
    lower case, punctuation and digits normalized) with its spaces removed; a text shorter than n is one shingle."""
    text = simplify_text(text, norm_config).replace(" ", "")
    return [text[i:i + n] for i in range(max(len(text) - n + 1, 1))]


def jaccard(a, b):
    """Exact Jaccard similarity of two sorted arrays of distinct shingle hashes."""
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return 1.0 if not len(b) else 0.0
    idx = np.searchsorted(b, a)
    idx[idx == len(b)] = 0
    common = int(np.count_nonzero(b[idx] == a))
    return common / (len(a) + len(b) - common)


XXHASH = {xxhash32: xxhash.xxh32_intdigest, xxhash64: xxhash.xxh64_intdigest}
MERSENNE = np.uint64((1 << 61) - 1)


class CharNgramMinhashSignature(MinhashDedupSignature):
    """MinHash signatures over character n-grams of the simplified text: no word segmentation, so Japanese (no
    spaces) and English are shingled alike.

    With `shingles_folder`, each task also writes its documents' shingle sets (sorted distinct 64-bit hashes, the values
    the signatures were computed from) as `<rank>.shingles` plus `<rank>.offsets` (document index -> start, as the
    signature files number documents), so MinhashVerifyCandidates can compute exact Jaccard without re-reading text."""

    name = "🎯 MinHash stage 1 (character n-grams)"

    def __init__(self, output_folder, config=None, language="ja", skip_existing_sigs=False, shingles_folder=None):
        super().__init__(output_folder, config=config, language=language, skip_existing_sigs=skip_existing_sigs)
        if shingles_folder and skip_existing_sigs:
            raise ValueError("shingles_folder needs every document shingled: skip_existing_sigs must be False")
        self.shingles_folder = get_datafolder(shingles_folder) if shingles_folder else None
        self._sink = None

    def get_shingles(self, text):
        grams = char_ngrams(text, self.config.n_grams, self.config.norm_config)
        # xxhash's own function when datatrove's hash is its thin wrapper around it (same values, less overhead);
        # distinct hashes: the same minimum per permutation, fewer rows to permute
        hash_func = XXHASH.get(self._hash_func, self._hash_func)
        shingles = np.fromiter(map(hash_func, grams), dtype=np.uint64, count=len(grams))
        shingles.sort()
        shingles = shingles[np.r_[True, shingles[1:] != shingles[:-1]]]  # np.unique, without its extra passes
        if self._sink is not None:  # called once per document, in document order (MinhashDedupSignature.run)
            self._sink[0].write(shingles.astype("<u8").tobytes())
            self._sink[1].append(self._sink[1][-1] + len(shingles))
        return shingles.reshape((-1, 1))

    def get_signature(self, shingles):
        """datatrove's signature, value for value: min over shingles of ((a * h + b) mod 2^64) mod (2^61 - 1), with
        the Mersenne remainder taken by shift-and-add instead of a division, in place (about 2x faster)."""
        a, b = self.parameters
        phv = shingles * a  # uint64 arithmetic wraps around, as in MinhashDedupSignature.get_signature
        phv += b
        high = phv >> np.uint64(61)
        phv &= MERSENNE
        phv += high  # now < 2^61 + 8: at most one subtraction of the modulus left, and rarely any
        if phv.max() >= MERSENNE:
            phv = np.where(phv >= MERSENNE, phv - MERSENNE, phv)
        if self.config.hash_config.precision == 32:
            phv = np.bitwise_and(phv, self.config.hash_config.max)
        return phv.min(axis=0).astype(self.config.hash_config.np_dtype).reshape(self.config.num_buckets, -1).tolist()

    def run(self, data, rank=0, world_size=1):
        if self.shingles_folder is None:
            return super().run(data, rank, world_size)
        offsets = [0]
        with self.shingles_folder.open(f"{rank:05d}.shingles", mode="wb") as f:
            self._sink = (f, offsets)
            try:
                super().run(data, rank, world_size)
            finally:
                self._sink = None
        with self.shingles_folder.open(f"{rank:05d}.offsets", mode="wb") as f:
            f.write(np.asarray(offsets, dtype="<u8").tobytes())


class MinhashVerifyCandidates(PipelineStep):
    """MinHash stage between datatrove's buckets (2) and cluster (3) stages: keeps only candidate pairs whose exact
    Jaccard similarity (on the shingle sets CharNgramMinhashSignature wrote to `shingles_folder`) is >= `threshold`.

    Reads each `.dups` file MinhashDedupBuckets wrote (records `<4I`: file, doc, file, doc, where file is the signature
    task's rank and doc the document index in it) and writes a `.dups` file of the same name and format to
    `output_folder`, which MinhashDedupCluster then reads instead. In one bucket, the pairs datatrove writes chain the
    documents that share that bucket's hashes (a, b), (b, c), ...; each such group is verified as a whole: every member is
    compared with the earlier members it is not yet connected to, so the verified pairs connect exactly the documents
    that an all-pairs check of the group would connect, while a group of k exact copies costs only k - 1 comparisons.
    Pairs against an index (datatrove's SENTINEL file id) have no shingles here and pass through unverified. Tasks take
    the `.dups` files round-robin (one task per bucket file is the natural sharding)."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash stage 2b (verify candidates, exact Jaccard)"

    def __init__(self, input_folder, shingles_folder, output_folder, threshold=0.8):
        super().__init__()
        self.input_folder = get_datafolder(input_folder)
        self.shingles_folder = get_datafolder(shingles_folder)
        self.output_folder = get_datafolder(output_folder)
        self.threshold = threshold

    def shingle_reader(self):
        offsets, files = {}, {}

        def read(file_id, doc):
            if file_id not in files:
                with self.shingles_folder.open(f"{file_id:05d}.offsets", "rb") as f:
                    offsets[file_id] = np.frombuffer(f.read(), dtype="<u8")
                files[file_id] = self.shingles_folder.open(f"{file_id:05d}.shingles", "rb")
            start, end = offsets[file_id][doc:doc + 2]
            f = files[file_id]
            f.seek(int(start) * 8)
            return np.frombuffer(f.read(int(end - start) * 8), dtype="<u8")

        return read, files

    def verify_group(self, members, read):
        members = sorted(members)
        shingles = [read(*m) for m in members]
        parent = list(range(len(members)))
        for i in range(1, len(members)):
            for j in range(i):
                if find(parent, i) == find(parent, j):
                    continue
                self.stat_update("comparisons")
                if jaccard(shingles[i], shingles[j]) >= self.threshold:
                    parent[find(parent, i)] = find(parent, j)
                    self.stat_update("verified_pairs")
                    yield (*members[j], *members[i])

    def run(self, data=None, rank=0, world_size=1):
        assert data is None, "MinhashVerifyCandidates reads the buckets stage's files: no input block before it"
        read, files = self.shingle_reader()
        try:
            for name in sorted(self.input_folder.list_files(glob_pattern="*.dups"))[rank::world_size]:
                with self.track_time(unit="bucket_file"):
                    with self.input_folder.open(name, "rb") as f:
                        pairs = np.frombuffer(f.read(), dtype="<u4").reshape((-1, 4))
                    self.stat_update("candidate_pairs", value=len(pairs))
                    parent, out = {}, []
                    for f1, d1, f2, d2 in pairs.tolist():
                        if f1 == SENTINEL:  # a match against an index: nothing to compare with here
                            out.append((f1, d1, f2, d2))
                            continue
                        parent.setdefault((f1, d1), (f1, d1))
                        parent.setdefault((f2, d2), (f2, d2))
                        parent[find(parent, (f1, d1))] = find(parent, (f2, d2))
                    groups = {}
                    for member in parent:
                        groups.setdefault(find(parent, member), []).append(member)
                    self.stat_update("candidate_groups", value=len(groups))
                    for group in groups.values():
                        out.extend(self.verify_group(group, read))
                    with self.output_folder.open(name, "wb") as f:
                        f.write(np.asarray(out, dtype="<u4").reshape((-1, 4)).tobytes())
        finally:
            for f in files.values():
                f.close()


def find(parent, x):
    """Union-find root with path halving (`parent`: a list or a dict)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def document_text(doc) -> str:
    """ExactDedupConfig.content_getter for exact document dedup: the document's text (module level: picklable)."""
    return doc.text


class SentenceDedupCounter(SentenceDedupFilter):
    """datatrove's SentenceDedupFilter (drops every repeat of a duplicated n-sentence span found by SentenceFindDedups,
    then documents left too short), with the accounting the corpus report needs: `dropped` counts the documents it
    removes (only those go to `exclusion_writer`) and `edited` the kept documents that lost spans (their texts before
    and after go to `edited_writer`, if given)."""

    def __init__(self, data_folder, config=None, exclusion_writer=None, language="ja", edited_writer=None):
        super().__init__(data_folder, config=config, language=language)
        self.dropped_writer, self.edited_writer = exclusion_writer, edited_writer

    def run(self, data, rank=0, world_size=1):
        pending = deque()

        def tap(docs):
            for doc in docs:
                pending.append((doc, doc.text))
                yield doc

        with contextlib.ExitStack() as stack:
            dropped = stack.enter_context(self.dropped_writer) if self.dropped_writer else None
            edited = stack.enter_context(self.edited_writer) if self.edited_writer else None

            def drop(doc):
                self.stat_update(StatHints.dropped)
                if dropped:
                    dropped.write(doc, rank)

            for doc in super().run(tap(data), rank, world_size):
                while pending[0][0] is not doc:
                    drop(pending.popleft()[0])
                original = pending.popleft()[1]
                if doc.text != original:
                    self.stat_update("edited")
                    if edited:
                        edited.write(dataclasses.replace(doc, metadata={**doc.metadata, "original_text": original}),
                                     rank)
                self.stat_update(StatHints.forwarded)
                yield doc
            while pending:
                drop(pending.popleft()[0])


class ValidatingJsonlReader(JsonlReader):
    """A JsonlReader that never drops a bad line silently (datatrove's logs a warning and skips it): each line that is
    not UTF-8, not a JSON object, or has no non-empty text is counted as `invalid` and written with its file, line
    number and reason to `invalid_folder`."""

    def __init__(self, data_folder, invalid_folder, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.invalid_folder = get_datafolder(invalid_folder)

    def read_file(self, filepath):
        invalid = []
        with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
            for li, raw in enumerate(f):
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw.decode("utf-8"))
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                    if not isinstance(data.get(self.text_key), str) or not data[self.text_key].strip():
                        raise ValueError(f"no non-empty '{self.text_key}'")
                except (UnicodeDecodeError, ValueError) as e:
                    self.stat_update("invalid")
                    invalid.append({"file": filepath, "line": li + 1, "error": str(e)[:200],
                                    "raw": raw.decode("utf-8", "replace")[:1000]})
                    continue
                document = self.get_document_from_dict(data, filepath, li)
                if document:
                    yield document
        if invalid:
            name = filepath.replace("/", "_") + ".invalid.jsonl"
            with self.invalid_folder.open(name, "w") as out:
                out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in invalid)


def train_fasttext(train_file, params, model_path):
    """fastText supervised training, run by the quality-classifier stage in a fresh (spawned) process."""
    import fasttext

    fasttext.train_supervised(input=train_file, **params).save_model(model_path)


def char_tokens(text):
    """Japanese has no spaces, so whitespace-splitting tools (fastText, ROUGE) see a paragraph as one word: split it into
    characters, keeping runs of ASCII letters and digits as words ("GPT-3は" -> "GPT - 3 は")."""
    return " ".join(re.findall(r"[A-Za-z0-9]+|\S", text))


class _CharTokenized:
    """A fastText model that scores character-tokenized text (as scripts/quality_classifier.py trains it)."""

    def __init__(self, model):
        self.model, self.labels = model, model.labels

    def predict(self, text, k=1):
        return self.model.predict(char_tokens(text), k=k)


class LocalFastTextClassifierFilter(FastTextClassifierFilter):
    """datatrove's FastTextClassifierFilter (scoring, thresholds, metadata and removal are datatrove's) with three
    changes: a local model file is read where it is (datatrove 0.10 copies even a local `model_url` into its asset
    cache, keyed by the path and never refreshed, so a classifier retrained at the same path was silently replaced by
    the first one: seen in recipes/quality-classifier); `tokenization: chars` scores character-tokenized text; and a
    removed document keeps its text in removed/ (datatrove empties it before the exclusion writer sees it)."""

    def __init__(self, model_url, tokenization="none", **kwargs):
        super().__init__(model_url, **kwargs)
        self.tokenization = tokenization

    @property
    def model(self):
        if self._model is None and os.path.isfile(self.model_url):
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_url)
            labels = [x.removeprefix("__label__") for x in self._model.labels]
            for label, _ in (self.keep_labels or []) + (self.remove_labels or []):
                if label not in labels:
                    raise ValueError(f"label '{label}' is not in the fastText model {self.model_url} ({labels})")
        model = super().model
        if self.tokenization == "chars" and not isinstance(model, _CharTokenized):
            self._model = model = _CharTokenized(model)
        return model

    def filter(self, doc):
        text = doc.text
        keep = super().filter(doc)
        if not keep:
            doc.text = text
        return keep


def quality_classifier_filter(config, exclusion_writer, dry_run=False):
    """The corpus stage's `quality_classifier: {model, threshold}` as a filter. The settings the classifier was trained
    with (label, tokenization, newline replacement) come from `<model>.json`, written by scripts/quality_classifier.py
    (a model without it, e.g. a downloaded one: label hq, no tokenization); the recipe may override them."""
    from llm_recipes.errors import RecipeError

    known = {"model", "threshold", "label", "tokenization", "newline_replacement"}
    if not isinstance(config, dict) or not {"model", "threshold"} <= set(config) or set(config) - known:
        raise RecipeError(f"quality_classifier: expected {{model, threshold}} (and optionally label, tokenization, "
                          f"newline_replacement); got {config}")
    local = "://" not in config["model"]
    if local and not dry_run and not os.path.isfile(config["model"]):
        raise RecipeError(f"quality_classifier.model: {config['model']}: file not found (train it with "
                          "scripts/quality_classifier.py)")
    settings = {"label": "hq", "tokenization": "none", "newline_replacement": ""}
    if local and os.path.isfile(config["model"] + ".json"):
        with open(config["model"] + ".json", encoding="utf-8") as f:
            saved = json.load(f)
        settings.update({k: saved[k] for k in settings if k in saved})
    settings.update({k: v for k, v in config.items() if k in settings})
    return LocalFastTextClassifierFilter(config["model"], tokenization=settings["tokenization"],
                                         keep_labels=(settings["label"], config["threshold"]),
                                         newline_replacement=settings["newline_replacement"],
                                         exclusion_writer=exclusion_writer)
