"""Benchmark: the corpus stage's MinHash near-dedup (datatrove, character 5-grams) against exact Jaccard ground truth
and against a plain datasketch.MinHashLSH with the same shingles, hash function and permutations.

    python benchmarks/bench_minhash.py [--docs 1500] [--buckets 14] [--hashes_per_bucket 8] [--threshold 0.8]

Generates Japanese documents (random sentences about the tiny world's villages) plus near-duplicates at several edit
rates and exact copies, computes the exact Jaccard of every pair on the same shingles, and reports pair precision /
recall / F1 of the duplicate clusters each method finds (pairs with Jaccard >= threshold are the truth), and documents
per second of the dedup stages. Prints figures; asserts nothing.
"""

import argparse
import itertools
import json
import os
import random
import tempfile
import time

from llm_recipes.reporting.report import markdown_table
from llm_recipes.scripts import make_tiny_data

EDIT_RATES = (0.0, 0.01, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3)


def generate(n_docs, seed=0):
    rng = random.Random(seed)
    villages = make_tiny_data.make_world(rng, 60)
    docs = []
    n_base = int(n_docs * 0.6)
    for i in range(n_base):
        v = rng.choice(villages)
        sentences = [make_tiny_data.fill(t, rng, v["ja"], "ja") for t in rng.sample(make_tiny_data.JA_FILLERS, 10)]
        docs.append("".join(sentences))
    while len(docs) < n_docs:
        base = rng.choice(docs[:n_base])
        rate = rng.choice(EDIT_RATES)
        chars = list(base)
        for pos in rng.sample(range(len(chars)), int(len(chars) * rate)):
            chars[pos] = rng.choice("あいうえおかきくけこさしすせそ村山川")
        text = "".join(chars)
        if rng.random() < 0.2:
            text += "この記事の内容は予告なく変更されることがあります。"
        docs.append(text)
    rng.shuffle(docs)
    return [{"id": f"d{i:05d}", "text": t} for i, t in enumerate(docs)]


def clusters_to_pairs(groups):
    return {tuple(sorted(p)) for g in groups for p in itertools.combinations(sorted(g), 2)}


def union_find(n, edges):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    groups = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def prf(pred, truth):
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(truth) if truth else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def run_datatrove(docs, workdir, buckets, rows):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from llm_recipes.corpus.blocks import CharNgramMinhashSignature

    os.makedirs(f"{workdir}/in", exist_ok=True)
    with open(f"{workdir}/in/docs.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    config = MinhashConfig(n_grams=5, num_buckets=buckets, hashes_per_bucket=rows)
    stages = [
        [JsonlReader(f"{workdir}/in"), CharNgramMinhashSignature(f"{workdir}/sig", config=config)],
        [MinhashDedupBuckets(f"{workdir}/sig", f"{workdir}/buckets", config=config)],
        [MinhashDedupCluster(f"{workdir}/buckets", f"{workdir}/ids", config=config, save_cluster_id=True)],
        [JsonlReader(f"{workdir}/in"), MinhashDedupFilter(f"{workdir}/ids", load_cluster_ids=True,
                                                          exclusion_writer=JsonlWriter(f"{workdir}/removed")),
         JsonlWriter(f"{workdir}/kept")],
    ]
    start = time.time()
    for i, pipeline in enumerate(stages):
        LocalPipelineExecutor(pipeline, tasks=buckets if i == 1 else 1, workers=1,
                              logging_dir=f"{workdir}/logs/{i}").run()
    seconds = time.time() - start
    groups = {}
    for folder in ("kept", "removed"):
        for name in os.listdir(f"{workdir}/{folder}"):
            import gzip

            with gzip.open(f"{workdir}/{folder}/{name}", "rt", encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    cid = d["metadata"].get("minhash_cluster_id", -1)
                    if cid != -1:
                        groups.setdefault(cid, []).append(int(d["id"][1:]))
    return [g for g in groups.values() if len(g) > 1], seconds


def run_datasketch(docs, shingles, buckets, rows, permutations):
    from datasketch import MinHash, MinHashLSH
    from datatrove.utils.hashes.xxhash import xxhash64

    start = time.time()
    lsh = MinHashLSH(num_perm=buckets * rows, params=(buckets, rows))
    edges = []
    for i, grams in enumerate(shingles):
        m = MinHash(num_perm=buckets * rows, scheme="legacy", hashfunc=xxhash64,
                      permutations=permutations)  # legacy: the same (a*h+b) mod 2^61-1 family, masked to 32 bits
        m.update_batch(grams)
        edges += [(i, j) for j in lsh.query(m)]
        lsh.insert(i, m)
    return union_find(len(docs), edges), time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1500)
    parser.add_argument("--buckets", type=int, default=14)
    parser.add_argument("--hashes_per_bucket", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.text import simplify_text

    from llm_recipes.corpus.blocks import CharNgramMinhashSignature

    docs = generate(args.docs)
    sig = CharNgramMinhashSignature("/tmp/unused", config=MinhashConfig(num_buckets=args.buckets,
                                                                          hashes_per_bucket=args.hashes_per_bucket))
    shingles = []
    for d in docs:  # the exact shingles CharNgramMinhashSignature hashes
        text = simplify_text(d["text"], sig.config.norm_config).replace(" ", "")
        shingles.append({text[i:i + 5] for i in range(max(len(text) - 4, 1))})
    start = time.time()
    truth = {(i, j) for i, j in itertools.combinations(range(len(docs)), 2)
             if len(shingles[i] & shingles[j]) / len(shingles[i] | shingles[j]) >= args.threshold}
    print(f"{len(docs)} documents, {len(truth)} pairs with Jaccard >= {args.threshold} "
          f"(exact all-pairs Jaccard in {time.time() - start:.1f}s)")
    a, b = sig.parameters
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        groups, seconds = run_datatrove(docs, workdir, args.buckets, args.hashes_per_bucket)
        rows.append(["datatrove (corpus stage)", *prf(clusters_to_pairs(groups), truth), len(docs) / seconds])
    groups, seconds = run_datasketch(docs, [sorted(s) for s in shingles], args.buckets, args.hashes_per_bucket,
                                     (a.reshape(-1), b.reshape(-1)))
    rows.append(["datasketch MinHashLSH", *prf(clusters_to_pairs(groups), truth), len(docs) / seconds])
    print(markdown_table(["method", "precision", "recall", "F1", "docs/s"],
                         [[r[0], round(r[1], 4), round(r[2], 4), round(r[3], 4), round(r[4], 1)] for r in rows]))


if __name__ == "__main__":
    main()
