"""Benchmark: the whole corpus stage (language ID → normalization → quality rules → MinHash → PII) at a real size.

    python benchmarks/bench_corpus_scale.py [--docs 50000] [--tasks 4] [--workers 2] [--out DIR]

Generates documents that look like a Japanese web crawl: articles made of 2-5 real Wikipedia paragraphs
(data/jglue-v1.3, CC BY-SA 4.0), tiny-world pages, English pages, repetitive spam, and exact / near copies of all of
them, written as several JSONL shards. Runs scripts/corpus.py with recipes/ja-web/corpus.yaml on `tasks` tasks and
`workers` worker processes, and prints documents/s, peak resident memory (the largest process) and the accounting
(read = kept + Σ removed) with the removals per rule.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

from llm_recipes import tiny_world
from llm_recipes.reporting.report import markdown_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAGRAPHS = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")
ENGLISH = ["The village lies in a quiet valley and is known for its {0} harvest in autumn. Visitors come by train "
           "from the city, and the local museum explains the history of the region in detail. ",
           "Our shop offers the best selection of {0} products. Free shipping on orders over fifty dollars. "]
SPAM = ["激安セール開催中！今すぐクリック！", "副業で月収100万円！登録は今すぐ！", "無料ダウンロードはこちら>>>"]


def generate(n_docs, seed=0):
    rng = random.Random(seed)
    paragraphs = [json.loads(line)["text"] for line in open(PARAGRAPHS, encoding="utf-8")]
    villages = tiny_world.make_world(rng, 60)
    base = []
    while len(base) < int(n_docs * 0.8):
        kind = rng.random()
        if kind < 0.55:  # an article from real paragraphs
            text = "\n".join(rng.sample(paragraphs, rng.randint(2, 5)))
        elif kind < 0.80:  # a tiny-world page
            v = rng.choice(villages)
            text = "".join(tiny_world.fill(t, rng, v["ja"], "ja") for t in rng.sample(tiny_world.JA_FILLERS, 8))
        elif kind < 0.92:  # English
            text = "".join(rng.choice(ENGLISH).format(rng.choice(["apple", "grape", "tea", "rice"])) for _ in range(6))
        else:  # spam
            text = "\n".join([rng.choice(SPAM)] * rng.randint(8, 20))
        base.append(text)
    docs = list(base)
    while len(docs) < n_docs:  # exact copies and near copies (a few characters changed, or a footer added)
        text = rng.choice(base)
        if rng.random() < 0.5:
            chars = list(text)
            for pos in rng.sample(range(len(chars)), max(1, len(chars) // 100)):
                chars[pos] = rng.choice("あいうえおかきくけこ")
            text = "".join(chars) + ("\nこの記事の内容は予告なく変更されることがあります。" if rng.random() < 0.3 else "")
        docs.append(text)
    rng.shuffle(docs)
    return [{"id": f"d{i:06d}", "text": t} for i, t in enumerate(docs)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="bench-corpus-")
    shards = os.path.join(out, "input")
    os.makedirs(shards, exist_ok=True)
    docs = generate(args.docs)
    for i in range(args.shards):
        with open(os.path.join(shards, f"part-{i:03d}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs[i::args.shards])
    size_mb = sum(os.path.getsize(os.path.join(shards, f)) for f in os.listdir(shards)) / 1e6
    cmd = [sys.executable, os.path.join(REPO, "scripts", "corpus.py"), "--config",
           os.path.join(REPO, "recipes", "ja-web", "corpus.yaml"), "--input_path", shards, "--output_dir",
           os.path.join(out, "corpus"), "--tasks", str(args.tasks), "--workers", str(args.workers)]
    start = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.time() - start
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest process, in MB (Linux: KB)
    report = json.load(open(os.path.join(out, "corpus", "report.json"), encoding="utf-8"))
    assert report["read"] == report["kept"] + sum(report["removed"].values()) == args.docs
    rows = [["documents", f"{args.docs:,} ({size_mb:.0f} MB in {args.shards} shards)"],
            ["tasks / workers", f"{args.tasks} / {args.workers}"], ["wall time", f"{wall:.0f} s"],
            ["documents / s", f"{args.docs / wall:.0f}"], ["peak RSS (largest process)", f"{peak_mb:.0f} MB"],
            ["kept", f"{report['kept']:,}"],
            *[[f"removed: {rule}", f"{n:,}"] for rule, n in report["removed"].items() if n],
            ["load average at the end", " ".join(f"{x:.2f}" for x in os.getloadavg())]]
    print(markdown_table(["corpus stage at scale", "value"], rows))
    print(f"(outputs in {out})")


if __name__ == "__main__":
    main()
