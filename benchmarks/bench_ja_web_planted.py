"""Benchmark: recipes/ja-web end to end on real Wikipedia text with planted near-duplicate groups and planted noise.

    python benchmarks/bench_ja_web_planted.py [--config recipes/ja-web/corpus.yaml] [--groups 200] [--seed 0]
                                              [--out outputs/bench-planted]

Documents (written to <out>/docs.jsonl, the truth to <out>/truth.json):
  clean       every paragraph of data/jglue-v1.3/ja_wikipedia_paragraphs.jsonl (1,159 JSQuAD contexts from 59 Japanese
              Wikipedia articles, CC BY-SA 4.0), as it is
  groups      `--groups` of those paragraphs (drawn without replacement) are originals of a duplicate group, each with
              1-3 planted copies: an exact copy, scattered character substitutions, a rewritten span (other paragraphs'
              clauses) or appended text, each edited to a target Jaccard drawn from [threshold, 1] and kept only if its
              exact Jaccard with the original (character 5-grams of the normalized text, the shingles the recipe's
              MinHash uses) is >= the recipe's `minhash_threshold`
  pii         20 clean paragraphs (none in a group) with an e-mail address or a Japanese phone number appended: kept,
              masked
  spam        repeated advertising lines and keyword lists
  wrong_lang  Korean, French, German, Spanish, Chinese and Italian text, and the tiny corpus's English documents
Every document is then placed at a random position (so about half of the copies come before their original).

Runs the corpus stage (scripts/corpus.py) with the recipe and prints: groups that lost every member (and, for each
member of such a group, the rule that removed it), planted (original, copy) pairs collapsed (at most one of the two
kept), groups left with exactly one member, clean paragraphs kept (those in no group), planted spam / wrong-language
documents removed and PII documents kept with the PII masked. The figures also go to <out>/figures.json (read by
tests/test_slow_paths.py). Asserts nothing.
"""

import argparse
import glob
import json
import os
import random
import re
import tempfile

from bench_filters_clean_text import run as run_corpus_stage  # benchmarks/ is the script's folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAGRAPHS = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")
TINY_DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
TINY_TRUTH = os.path.join(REPO, "recipes", "tiny", "data", "truth.json")
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん村山川森海"
EDITS = ("exact", "substitute", "span", "append")
KEYWORDS = ["激安", "送料無料", "ポイント10倍", "限定", "今すぐ", "クリック", "最安値", "人気", "ランキング", "無料登録"]


def recipe_settings(config):
    from llm_recipes.config import load_recipe
    from llm_recipes.scripts import corpus

    (args,) = load_recipe(corpus.ARGUMENTS, config, output_dir="/tmp/unused", input_path="/tmp/unused.jsonl")
    return args


class Shingler:
    """The shingle sets the recipe's MinHash compares: character n-grams of the text after the recipe's normalizers."""

    def __init__(self, args):
        from llm_recipes.corpus.steps import text_normalizers

        self.steps, self.n = text_normalizers(args.fix_encoding, args.normalization), args.minhash_ngrams

    def __call__(self, text):
        from llm_recipes.corpus.steps import char_ngrams

        for step in self.steps:
            text = step.format(text)
        return set(char_ngrams(text, self.n))


def jaccard(a, b):
    return len(a & b) / len(a | b) if a | b else 1.0


def edit(rng, text, kind, target, clauses):
    """A copy of `text` edited towards Jaccard `target` on character 5-grams (as benchmarks/bench_minhash.py edits)."""
    n, share = len(text), (1 - target) / (1 + target)  # share of the original's shingles to change
    if kind == "exact":
        return text
    if kind == "substitute":
        chars = list(text)
        for pos in rng.sample(range(n), min(n, max(1, round(n * (1 - (1 - share) ** (1 / 5)))))):
            if chars[pos] != "\n":
                chars[pos] = rng.choice(KANA)
        return "".join(chars)
    if kind == "span":
        length = max(1, round(n * share) - 4)
        start = rng.randrange(max(1, n - length))
        return text[:start] + "".join(rng.sample(clauses, 30))[:length] + text[start + length:]
    return text + "".join(rng.sample(clauses, 20))[:max(1, round(n * (1 / target - 1)))]


def planted_copy(rng, text, threshold, clauses, shingle, original_shingles):
    """An edited copy with exact Jaccard >= threshold (the target is raised each time a draw falls short)."""
    kind = rng.choice(EDITS)
    low = threshold
    for _ in range(20):
        target = rng.uniform(low, 1.0)
        copy = edit(rng, text, kind, target, clauses)
        similarity = jaccard(shingle(copy), original_shingles)
        if similarity >= threshold:
            return copy, kind, similarity
        low = (low + 1.0) / 2
    return text, "exact", 1.0


def noise(rng):
    spam = ["\n".join([line] * rng.randrange(15, 30)) for line in ("激安セール開催中！今すぐクリック！",
                                                                      "副業で月収100万円！登録は今すぐ！",
                                                                      "BUY CHEAP WATCHES NOW!!! BEST PRICE!!!")]
    spam += ["\n".join("、".join(rng.sample(KEYWORDS, 5)) + "！" for _ in range(rng.randrange(10, 20)))
             for _ in range(3)]
    from llm_recipes.tiny_world import WRONG_LANGUAGE

    truth = json.load(open(TINY_TRUTH, encoding="utf-8"))
    tiny = {d["id"]: d["text"] for d in map(json.loads, open(TINY_DOCS, encoding="utf-8"))}
    english = [tiny[i] for i in truth["english"][:20]]
    return spam, list(WRONG_LANGUAGE) + english


def build(args, n_groups=200, seed=0, n_pii=20):
    """The documents (random order) and the truth: groups {original id: [copy ids]}, clean, pii, spam, wrong_lang."""
    rng = random.Random(seed)
    records = [json.loads(line) for line in open(PARAGRAPHS, encoding="utf-8")]
    clauses = [c for r in records for c in re.findall(r"[^、。]+[、。]?", r["text"]) if len(c) > 3]
    shingle = Shingler(args)
    docs = {f"wiki-{i:04d}": r["text"] for i, r in enumerate(records)}
    ids = list(docs)
    originals = rng.sample(ids, n_groups)
    truth = {"groups": {}, "edits": {}, "jaccard": {}, "clean": [i for i in ids if i not in set(originals)],
             "pii": {}, "spam": [], "wrong_language": []}
    for g, orig in enumerate(originals):
        base = shingle(docs[orig])
        truth["groups"][orig] = []
        for k in range(rng.randint(1, 3)):
            copy, kind, similarity = planted_copy(rng, docs[orig], args.minhash_threshold, clauses, shingle, base)
            copy_id = f"dup-{g:03d}-{k}"
            docs[copy_id] = copy
            truth["groups"][orig].append(copy_id)
            truth["edits"][copy_id], truth["jaccard"][copy_id] = kind, round(similarity, 4)
    from llm_recipes.tiny_world import PHONES

    for i, doc_id in enumerate(rng.sample(truth["clean"], n_pii)):
        pii = PHONES[i % len(PHONES)] if i % 2 else f"contact{i}@example.co.jp"
        docs[doc_id] += f"\nお問い合わせは{pii}までどうぞ。"
        truth["pii"][doc_id] = pii
    spam, wrong = noise(rng)
    for kind, texts in (("spam", spam), ("wrong_language", wrong)):
        for i, text in enumerate(texts):
            docs[f"{kind}-{i:02d}"] = text
            truth[kind].append(f"{kind}-{i:02d}")
    order = list(docs)
    rng.shuffle(order)
    return [{"id": i, "text": docs[i]} for i in order], truth


def score(out, truth, order, report):
    kept = {d["id"]: d["text"] for f in glob.glob(f"{out}/kept/*.jsonl") for d in map(json.loads, open(f))}
    removed_by = {json.loads(line)["id"]: os.path.basename(os.path.dirname(f))
                  for f in glob.glob(f"{out}/removed/*/*.jsonl") for line in open(f, encoding="utf-8")}
    position = {doc_id: i for i, doc_id in enumerate(order)}
    lost, one, pairs, collapsed, before = {}, 0, 0, 0, 0
    for orig, copies in truth["groups"].items():
        members = [orig, *copies]
        survivors = [m for m in members if m in kept]
        one += len(survivors) == 1
        before += any(position[c] < position[orig] for c in copies)
        if not survivors:
            lost[orig] = {m: {"rule": removed_by.get(m), "edit": truth["edits"].get(m, "original"),
                              "jaccard": truth["jaccard"].get(m, 1.0), "position": position[m]} for m in members}
        for c in copies:
            pairs += 1
            collapsed += not (orig in kept and c in kept)
    filter_rules = {r for r in report["removed"] if not r.endswith("_dedup")}
    clean_kept = sum(d in kept for d in truth["clean"])
    masked = {d: d in kept and pii not in kept[d] and any(t in kept[d] for t in ("<EMAIL>", "<PHONE>"))
              for d, pii in truth["pii"].items()}
    return {
        "read": report["read"], "kept": report["kept"], "removed": report["removed"],
        "accounting_ok": report["read"] == report["kept"] + sum(report["removed"].values()),
        "groups": len(truth["groups"]), "copies": pairs, "groups_with_a_copy_before_the_original": before,
        "groups_lost": len(lost), "groups_lost_to_filters_only": sum(
            all(m["rule"] in filter_rules for m in members.values()) for members in lost.values()),
        "lost_groups": lost, "groups_with_exactly_one_kept": one,
        "pairs_collapsed": collapsed / pairs,
        "clean": len(truth["clean"]), "clean_kept": clean_kept, "clean_kept_share": clean_kept / len(truth["clean"]),
        "clean_removed_by": {r: sum(removed_by.get(d) == r for d in truth["clean"]) for r in report["removed"]
                             if any(removed_by.get(d) == r for d in truth["clean"])},
        "spam": len(truth["spam"]), "spam_kept": [d for d in truth["spam"] if d in kept],
        "wrong_language": len(truth["wrong_language"]),
        "wrong_language_kept": [d for d in truth["wrong_language"] if d in kept],
        "pii": len(truth["pii"]), "pii_kept_and_masked": sum(masked.values()),
        "pii_leaked": [d for d, pii in truth["pii"].items() if d in kept and pii in kept[d]],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "recipes", "ja-web", "corpus.yaml"))
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="bench-planted-")
    os.makedirs(out, exist_ok=True)
    settings = recipe_settings(args.config)
    docs, truth = build(settings, args.groups, args.seed)
    path = os.path.join(out, "docs.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    with open(os.path.join(out, "truth.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, ensure_ascii=False, indent=1)
    report = run_corpus_stage(args.config, path, os.path.join(out, "corpus"))
    figures = score(os.path.join(out, "corpus"), truth, [d["id"] for d in docs], report)
    with open(os.path.join(out, "figures.json"), "w", encoding="utf-8") as f:
        json.dump(figures, f, ensure_ascii=False, indent=1)
    print(f"{os.path.relpath(args.config, REPO)}: {len(docs)} documents, read {figures['read']} = kept "
          f"{figures['kept']} + removed {sum(figures['removed'].values())} ({figures['removed']})")
    print(f"duplicate groups: {figures['groups']} ({figures['copies']} copies, "
          f"{figures['groups_with_a_copy_before_the_original']} with a copy before the original)")
    print(f"  lost every member: {figures['groups_lost']} / {figures['groups']} "
          f"({figures['groups_lost_to_filters_only']} of them: every member removed by a filter)")
    for orig, members in figures["lost_groups"].items():
        print(f"    {orig}: " + ", ".join(f"{m} [{v['edit']}, J={v['jaccard']}, pos {v['position']}] -> {v['rule']}"
                                          for m, v in members.items()))
    print(f"  exactly one member kept: {figures['groups_with_exactly_one_kept']} / {figures['groups']}")
    print(f"  (original, copy) pairs collapsed: {figures['pairs_collapsed']:.1%}")
    print(f"clean paragraphs (in no group) kept: {figures['clean_kept']} / {figures['clean']} = "
          f"{figures['clean_kept_share']:.1%}; removed by {figures['clean_removed_by']}")
    print(f"spam removed: {figures['spam'] - len(figures['spam_kept'])} / {figures['spam']}; wrong language removed: "
          f"{figures['wrong_language'] - len(figures['wrong_language_kept'])} / {figures['wrong_language']}; "
          f"PII kept and masked: {figures['pii_kept_and_masked']} / {figures['pii']} (leaked: {figures['pii_leaked']})")
    print(f"(outputs in {out})")


if __name__ == "__main__":
    main()
