"""Unit tests of the pieces datatrove lacks (llm_recipes.corpus.steps): Japanese rules, PII, MinHash verification."""
import json
import os
import random

import numpy as np
import pytest
from conftest import REPO
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashConfig

from llm_recipes.corpus.lsh_params import minhash_params, scurve_areas
from llm_recipes.corpus.steps import (
    CharNgramMinhashSignature,
    JapaneseQualityFilter,
    LinguaLanguageFilter,
    MinhashVerifyCandidates,
    OnlyLanguages,
    PIIMasker,
    char_ngrams,
    jaccard,
)

CLEAN_JA = "トコワ村は北の山あいにある小さな村です。毎年九月には大きな祭りが開かれ、村の人々はとても親切です。"


def doc(text, **metadata):
    return Document(text=text, id="x", metadata=dict(metadata))


def test_language_filter_keeps_ja_en_and_drops_others():
    f = LinguaLanguageFilter(["ja", "en"], threshold=0.5)
    d = doc(CLEAN_JA)
    assert f.filter(d) is True and d.metadata["language"] == "ja"
    assert f.filter(doc("The village lies in the northern hills and holds a large festival every year.")) is True
    assert f.filter(doc("이 마을은 산속에 있는 작은 마을입니다. 매년 여름에 큰 축제가 열립니다.")) == (False, "language_ko")


def test_japanese_quality_rules():
    f = JapaneseQualityFilter()
    assert f.filter(doc(CLEAN_JA)) is True
    assert f.filter(doc("トコワ")) == (False, "too_short")
    assert f.filter(doc("カタカナバカリノブンショウデス。" * 5)) == (False, "hiragana_frac")
    assert f.filter(doc("村" + "の" * 250 + "。")) == (False, "sentence_length")
    assert f.filter(doc("This is an English sentence that is long enough to be measured here.")) == (
        False, "japanese_frac")


def test_only_languages_skips_other_languages():
    f = OnlyLanguages(JapaneseQualityFilter(), ["ja"])
    assert f.filter(doc("short", language="en")) is True
    assert f.filter(doc("トコワ", language="ja")) == (False, "too_short")


def test_pii_masks_japanese_phones_and_emails_next_to_japanese():
    pii = PIIMasker()
    for phone in ["03-1234-5678", "090-2345-6789", "0120-123-456", "+81-80-3456-7890", "06-9876-5432"]:
        assert pii.format(f"お問い合わせは{phone}まで") == "お問い合わせは<PHONE>まで", phone
    # datatrove's own pattern starts with \b and misses an address glued to Japanese text
    assert pii.format("連絡先はinfo@example.co.jpです") == "連絡先は<EMAIL>です"
    assert pii.format("1990年から2020年まで") == "1990年から2020年まで"  # years are not phone numbers


def test_pii_cards_my_number_and_postal_codes_are_validated():
    pii = PIIMasker()
    assert pii.format("カードは4111 1111 1111 1111です") == "カードは<CREDIT_CARD>です"
    assert pii.format("カードは4111 1111 1111 1112です") == "カードは4111 1111 1111 1112です"  # fails Luhn
    assert pii.format("番号123456789018を") == "番号<MY_NUMBER>を"  # valid check digit
    assert pii.format("番号123456789012を") == "番号123456789012を"  # wrong check digit
    assert pii.format("〒100-0001 東京都") == "〒<POSTAL_CODE> 東京都"


def test_japanese_rules_ellipsis_ng_words_repetition_and_kuten(tmp_path):
    ng = tmp_path / "ng.txt"
    ng.write_text("# comment\n激安\n", encoding="utf-8")
    f = JapaneseQualityFilter(ng_words_file=str(ng), min_mean_sentence_length=None)
    assert f.filter(doc("今日は晴れでした…\n明日は雨でしょうか…\n" * 3)) == (False, "ellipsis")
    assert f.filter(doc("激安の時計を売っています。激安です。ぜひ見に来てくださいね。")) == (False, "ng_words")
    assert f.filter(doc("これはテストの文章です。" * 20)) == (False, "dup_char_ngrams")
    assert f.filter(doc("句点のないとても長い文章が続いていきますが" * 12)) == (False, "sentence_length")
    assert f.filter(doc(CLEAN_JA)) is True


# --- MinHash: exact-Jaccard verification of LSH candidates, and buckets x hashes from the threshold ---

WIKI = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"


def shingle_set(text):
    return set(char_ngrams(text, 5))


def exact_jaccard(a, b):
    a, b = shingle_set(a), shingle_set(b)
    return len(a & b) / len(a | b)


def variant(rng, text, target):
    """`text` with one span replaced by random kana, its length chosen so the exact Jaccard is nearest `target`."""
    start = rng.randrange(len(text) // 4)
    best = None
    for length in range(1, len(text) - start):
        new = text[:start] + "".join(rng.choice(KANA) for _ in range(length)) + text[start + length:]
        j = exact_jaccard(text, new)
        if best is None or abs(j - target) < abs(best[0] - target):
            best = (j, new)
    return best


def lsh_collides(a, b, buckets=14, rows=8):
    sig = CharNgramMinhashSignature("/tmp/unused", config=MinhashConfig(num_buckets=buckets, hashes_per_bucket=rows))
    return any(x == y for x, y in zip(sig.get_signature(sig.get_shingles(a)), sig.get_signature(sig.get_shingles(b))))


def planted_pair(rng, text, target):
    """A variant of `text` at Jaccard `target` (+- 0.01) that the 14 x 8 LSH makes a candidate pair."""
    for _ in range(200):
        j, new = variant(rng, text, target)
        if abs(j - target) <= 0.01 and lsh_collides(text, new):
            return new, j
    raise AssertionError(f"no colliding variant at Jaccard {target}")


def run_minhash(tmp_path, files, buckets=14, rows=8, threshold=0.8):
    """datatrove's MinHash stages on JSONL `files` (one signature task each), clustered once from the raw LSH
    candidates and once from the verified ones; returns the removed (file, doc index) pairs of each."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster
    from datatrove.pipeline.readers import JsonlReader

    for i, docs in enumerate(files):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{i}.jsonl").write_text("".join(json.dumps({"id": f"{i}-{k}", "text": t}) + "\n"
                                                            for k, t in enumerate(docs)), encoding="utf-8")
    config = MinhashConfig(num_buckets=buckets, hashes_per_bucket=rows)
    w = str(tmp_path)

    def stage(name, pipeline, tasks):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=f"{w}/logs/{name}").run()

    stage("sig", [JsonlReader(f"{w}/in"), CharNgramMinhashSignature(f"{w}/sig", config, shingles_folder=f"{w}/sh")],
          len(files))
    stage("buckets", [MinhashDedupBuckets(f"{w}/sig", f"{w}/buckets", config=config)], buckets)
    stage("verify", [MinhashVerifyCandidates(f"{w}/buckets", f"{w}/sh", f"{w}/verified", threshold)], buckets)
    removed = {}
    for pairs in ("buckets", "verified"):
        stage(f"cluster_{pairs}", [MinhashDedupCluster(f"{w}/{pairs}", f"{w}/remove_{pairs}", config=config)], 1)
        removed[pairs] = {(int(f.name.split(".")[0]), int(d))
                          for f in (tmp_path / f"remove_{pairs}").glob("*.remove")
                          for d in np.frombuffer(f.read_bytes(), dtype="<u4")}
    return removed


def test_verification_keeps_the_09_pair_merged_and_the_06_pair_apart(tmp_path):
    rng = random.Random(0)
    paragraphs = [t for t in (json.loads(line)["text"] for line in open(WIKI, encoding="utf-8")) if len(t) > 300]
    near, near_j = planted_pair(rng, paragraphs[0], 0.9)
    far, far_j = planted_pair(rng, paragraphs[1], 0.6)
    background = paragraphs[2:22]
    # the pairs' members in different signature tasks: (file, doc) ids across files are what the verifier resolves
    files = [[paragraphs[0], paragraphs[1], *background[:10]], [*background[10:], near, far]]
    removed = run_minhash(tmp_path, files)
    near_ids, far_ids = {(0, 0), (1, 10)}, {(0, 1), (1, 11)}
    assert abs(near_j - 0.9) <= 0.01 and abs(far_j - 0.6) <= 0.01
    # unverified LSH at 14 x 8: both pairs merged (one member of each removed), nothing else
    assert len(removed["buckets"] & near_ids) == 1 and len(removed["buckets"] & far_ids) == 1
    assert removed["buckets"] <= near_ids | far_ids
    # verified at Jaccard 0.8: the 0.9 pair stays merged, the 0.6 pair is kept apart
    assert len(removed["verified"] & near_ids) == 1 and not removed["verified"] & far_ids
    assert removed["verified"] <= near_ids


def test_jaccard_of_hashed_shingles_equals_the_set_jaccard():
    sig = CharNgramMinhashSignature("/tmp/unused", config=MinhashConfig())
    rng = random.Random(1)
    a = "".join(rng.choice(KANA[:12]) for _ in range(300))
    for b in (a, a[:150], a[100:] + "ん" * 30, "まみむめも" * 40):
        assert jaccard(sig.get_shingles(a).ravel(), sig.get_shingles(b).ravel()) == pytest.approx(exact_jaccard(a, b))


def test_buckets_and_hashes_chosen_from_the_threshold():
    # text-dedup's weights (0.5, 0.5) at 0.8 with 112 hashes: 9 x 12; a missed duplicate weighted 0.95: 14 x 8
    assert minhash_params(0.8, 112, 0.5)[:2] == (9, 12)
    assert minhash_params(0.8, 112, 0.95)[:2] == (14, 8)
    assert minhash_params(0.8, 112, 0.95, buckets=20)[0] == 20
    b, r, fp, fn = minhash_params(0.8, 112, 0.95)
    s = np.linspace(0, 1, 200001)  # the areas by the trapezoid rule on a fine grid
    p = 1 - (1 - s ** r) ** b
    assert fp == pytest.approx(np.trapezoid(np.where(s <= 0.8, p, 0), s), abs=1e-4)
    assert fn == pytest.approx(np.trapezoid(np.where(s >= 0.8, 1 - p, 0), s), abs=1e-4)
    error = {(b, r): 0.05 * a + 0.95 * c for b in range(1, 113) for r in range(1, 112 // b + 1)
             for a, c in [scurve_areas(0.8, b, r)]}
    assert min(error, key=error.get) == (14, 8)


@pytest.mark.parametrize("precision", [64, 32])
def test_char_ngram_signature_equals_datatrove_signature(precision):
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    sig = CharNgramMinhashSignature("/tmp/unused", config=MinhashConfig(hash_config=HashConfig(precision=precision)))
    rng = np.random.default_rng(0)
    # shingles whose permuted value x = (a * h + b) mod 2^64 makes (x mod 2^61) + (x >> 61) land on 2^61 - 1 + k
    # (k = 0, 1, 6): the rare case the shift-and-add remainder must still correct (h = (x - b) / a mod 2^64, for a
    # permutation whose a is odd, so invertible)
    j = next(i for i, x in enumerate(sig.parameters[0][0].tolist()) if x % 2)
    a, b = int(sig.parameters[0][0, j]), int(sig.parameters[1][0, j])
    edge = [((x - b) * pow(a, -1, 2 ** 64)) % 2 ** 64 for x in (2 ** 61 - 1, 3 * 2 ** 61 - 2, 8 * 2 ** 61 - 2)]
    for shingles in (sig.get_shingles("トコワ村は北の山あいにある小さな村です。" * 5),
                     rng.integers(0, 2 ** 64 - 1, size=(5000, 1), dtype=np.uint64, endpoint=True),
                     np.array(edge, dtype=np.uint64).reshape((-1, 1))):
        assert sig.get_signature(shingles) == MinhashDedupSignature.get_signature(sig, shingles)
