"""Benchmark: the corpus stage's MinHash near-dedup (datatrove stages + exact-Jaccard verification of the candidates)
against datasketch's MinHashLSH and against exact Jaccard ground truth, at several corpus sizes in one run.

    python benchmarks/bench_minhash.py [--docs 3000 100000] [--threshold 0.8] [--workers 2] [--no_plain]

Documents: generated Japanese, each 20 clauses drawn from the 1,159 JGLUE Wikipedia paragraphs (CC BY-SA 4.0);
`--dup_frac` (20 %) of them are near-duplicates of another document, edited to a target Jaccard drawn uniformly from
0.5-1.0 (scattered character substitutions, a replaced span, or appended text; a tenth are exact copies).

Methods, each in its own process (peak memory = the largest sum of RSS over its process tree, sampled every 50 ms):
  ours (verified)   the corpus stage's dedup: CharNgramMinhashSignature -> MinhashDedupBuckets -> MinhashVerifyCandidates
                    -> MinhashDedupCluster -> MinhashDedupFilter + JsonlWriter, datatrove's LocalPipelineExecutor with
                    `--workers` workers, from the JSONL on disk to the kept JSONL; buckets x hashes chosen from the
                    threshold as the corpus stage chooses them
  ours (plain LSH)  the same without verification (datatrove's behaviour)
  datasketch        MinHashLSH in one process, from the same JSONL to a kept JSONL (its core, texts in memory ->
                    clusters, timed apart): the same shingles (char_ngrams), hash (xxh64_intdigest), permutations
                    (the signature stage's a, b) and buckets x hashes
Truth: the pairs whose exact Jaccard of the shingle sets (Python sets of the n-gram strings) is >= threshold. Up to
`--exhaustive` documents, over all pairs (a sparse matrix product); above, over the candidates of a very permissive LSH
(40 bands x 5 rows, its own hash family: a pair at Jaccard 0.8 escapes it with probability 0.672^40 = 1e-7) plus all
planted groups. At sizes where both run, the permissive method is checked against all pairs. Scores are pair precision
/ recall / F1 of the clusters each method returns, against the connected components of the truth pairs (a method that
clusters transitively cannot do better) and, second, against the truth pairs themselves. Prints figures; asserts
nothing.
"""

import argparse
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIKI = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん村山川森海"


# --- documents ---

def generate(n_docs, dup_frac=0.2, seed=0):
    """`n_docs` texts and the planted groups {base index: [copy indices]}."""
    rng = random.Random(seed)
    paragraphs = [json.loads(line)["text"] for line in open(WIKI, encoding="utf-8")]
    clauses = [c for p in paragraphs for c in re.findall(r"[^、。]+[、。]?", p) if len(c) > 3]
    n_copies = int(n_docs * dup_frac)
    texts = ["".join(rng.sample(clauses, 20)) for _ in range(n_docs - n_copies)]
    sources = []
    for _ in range(n_copies):
        base = rng.randrange(n_docs - n_copies)
        target = 1.0 if rng.random() < 0.1 else rng.uniform(0.5, 1.0)
        texts.append(edit(rng, texts[base], target, clauses))
        sources.append(base)
    order = list(range(n_docs))
    rng.shuffle(order)  # order[new position] = old index
    position = {old: new for new, old in enumerate(order)}
    groups = {}
    for k, base in enumerate(sources):
        groups.setdefault(position[base], []).append(position[n_docs - n_copies + k])
    return [texts[i] for i in order], groups


def edit(rng, text, target, clauses):
    """A near-duplicate of `text` at roughly Jaccard `target` on character 5-grams (each edited character breaks up to
    5 shingles and makes new ones; the exact Jaccard is measured later)."""
    if target >= 1.0:
        return text
    n, share = len(text), (1 - target) / (1 + target)  # share of the original's shingles that must change
    kind = rng.random()
    if kind < 0.5:  # scattered character substitutions
        chars = list(text)
        for pos in rng.sample(range(n), min(n, round(n * (1 - (1 - share) ** (1 / 5))))):
            chars[pos] = rng.choice(KANA)
        return "".join(chars)
    if kind < 0.8:  # one span rewritten
        length = max(1, round(n * share) - 4)
        start = rng.randrange(max(1, n - length))
        new = "".join(rng.sample(clauses, 30))[:length]
        return text[:start] + new + text[start + length:]
    extra = round(n * (1 / target - 1))  # text appended (comments, boilerplate): J = n / (n + extra)
    return text + "".join(rng.sample(clauses, 60))[:extra]


# --- methods (each run in a subprocess: python bench_minhash.py --method NAME --workdir W ...) ---

def union_find_groups(n, edges):
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


def run_ours(args, n_docs, verify):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from llm_recipes.corpus.steps import CharNgramMinhashSignature, MinhashVerifyCandidates

    w = f"{args.workdir}/{'verified' if verify else 'plain'}"
    config = MinhashConfig(n_grams=5, num_buckets=args.buckets, hashes_per_bucket=args.rows)
    tasks = args.workers
    pairs = f"{w}/verified" if verify else f"{w}/buckets"
    stages = [
        ("signatures", [JsonlReader(f"{args.workdir}/in", add_file_path=False),
                        CharNgramMinhashSignature(f"{w}/sig", config, shingles_folder=f"{w}/shingles" if verify
                                                  else None)], tasks),
        ("buckets", [MinhashDedupBuckets(f"{w}/sig", f"{w}/buckets", config=config)], args.buckets),
        *([("verify", [MinhashVerifyCandidates(f"{w}/buckets", f"{w}/shingles", f"{w}/verified", args.threshold)],
            args.buckets)] if verify else []),
        ("clusters", [MinhashDedupCluster(pairs, f"{w}/remove_ids", config=config)], 1),
        ("filter+write", [JsonlReader(f"{args.workdir}/in", add_file_path=False), MinhashDedupFilter(f"{w}/remove_ids"),
                          JsonlWriter(f"{w}/kept", compression=None)], tasks),
    ]
    seconds = {}
    start = time.time()
    for name, pipeline, n in stages:
        t = time.time()
        LocalPipelineExecutor(pipeline, tasks=n, workers=min(args.workers, n), logging_dir=f"{w}/logs/{name}").run()
        seconds[name] = time.time() - t
    total = time.time() - start
    from llm_recipes.corpus.accounting import stage_costs

    for name, row in stage_costs(w).items():  # datatrove's step timers summed over the stage's tasks
        seconds[f"{name} (task-seconds)"] = row["task_seconds"]
    # the clusters: the union of the pairs the cluster stage read; (task, document index) -> position in the corpus
    sizes = [sum(1 for _ in open(f"{args.workdir}/in/{i}.jsonl", encoding="utf-8")) for i in range(tasks)]
    offsets = np.cumsum([0, *sizes])
    edges = []
    for name in os.listdir(pairs):
        records = np.fromfile(f"{pairs}/{name}", dtype="<u4").reshape((-1, 4))
        edges += [(int(offsets[f1] + d1), int(offsets[f2] + d2)) for f1, d1, f2, d2 in records]
    groups = union_find_groups(n_docs, edges)
    kept = sum(1 for f in os.listdir(f"{w}/kept") for _ in open(f"{w}/kept/{f}", encoding="utf-8"))
    assert kept == n_docs - sum(len(g) - 1 for g in groups), "kept output disagrees with the clusters"
    return groups, total, seconds


def run_datasketch(args):
    """JSONL in -> kept JSONL out, as the corpus stage; the core (texts in memory -> clusters) timed apart."""
    import xxhash
    from datasketch import MinHash, MinHashLSH
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    from llm_recipes.corpus.steps import CharNgramMinhashSignature, char_ngrams

    a, b = CharNgramMinhashSignature("/tmp/unused", MinhashConfig(num_buckets=args.buckets,
                                                                  hashes_per_bucket=args.rows)).parameters
    permutations = (a.reshape(-1), b.reshape(-1))
    num_perm = args.buckets * args.rows
    start = time.time()
    docs = [json.loads(line) for i in range(args.workers) for line in open(f"{args.workdir}/in/{i}.jsonl",
                                                                             encoding="utf-8")]
    read = time.time() - start
    lsh = MinHashLSH(num_perm=num_perm, params=(args.buckets, args.rows))
    edges, shingling = [], 0.0
    for i, doc in enumerate(docs):
        t = time.time()
        grams = set(char_ngrams(doc["text"], 5))
        shingling += time.time() - t
        m = MinHash(num_perm=num_perm, scheme="legacy", hashfunc=xxhash.xxh64_intdigest, permutations=permutations)
        m.update_batch(grams)  # legacy: datatrove's (a*h+b) mod 2^61-1 family, masked to 32 bits
        edges += [(i, j) for j in lsh.query(m)]
        lsh.insert(i, m)
    groups = union_find_groups(len(docs), edges)
    core = time.time() - start - read
    t = time.time()
    removed = {i for g in groups for i in sorted(g)[1:]}
    os.makedirs(f"{args.workdir}/datasketch_kept", exist_ok=True)
    with open(f"{args.workdir}/datasketch_kept/kept.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for i, d in enumerate(docs) if i not in removed)
    total = time.time() - start
    return groups, total, {"read": read, "shingling": shingling, "minhash+lsh": core - shingling,
                           "write": time.time() - t}, core


def method_main(args):
    if args.method == "datasketch":
        groups, total, seconds, core = run_datasketch(args)
    else:
        n = sum(1 for i in range(args.workers) for _ in open(f"{args.workdir}/in/{i}.jsonl", encoding="utf-8"))
        groups, total, seconds = run_ours(args, n, verify=args.method == "verified")
        core = None
    with open(f"{args.workdir}/result_{args.method}.json", "w") as f:
        json.dump({"groups": groups, "seconds": total, "core_seconds": core, "stages": seconds}, f)


def run_method(args, method, workdir):
    """Run one method in a subprocess; its peak memory: the largest sum of RSS over its process tree."""
    import psutil

    cmd = [sys.executable, os.path.abspath(__file__), "--method", method, "--workdir", workdir,
           "--buckets", str(args.buckets), "--rows", str(args.rows), "--threshold", str(args.threshold),
           "--workers", str(args.workers)]
    load = os.getloadavg()[0]
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, cpu = 0, {}
    while proc.poll() is None:
        rss = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
            except psutil.Error:
                pass
        peak = max(peak, rss)
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"{method} failed:\n{proc.stderr.read()[-3000:]}")
    with open(f"{workdir}/result_{method}.json") as f:
        result = json.load(f)
    result.update(peak_mb=peak / 2 ** 20, cpu_seconds=sum(cpu.values()), load=(load + os.getloadavg()[0]) / 2)
    return result


# --- truth ---

def hashed_shingles(texts):
    from datatrove.utils.hashes.xxhash import xxhash64

    from llm_recipes.corpus.steps import char_ngrams

    return [np.unique(np.fromiter(map(xxhash64, char_ngrams(t, 5)), dtype=np.uint64)) for t in texts]


def permissive_candidates(shingles, bands=40, rows=5, seed=12345):
    """Pairs sharing a band of a 40 x 5 MinHash over multiply-shift hashes (its own family and seed)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2 ** 63, size=bands * rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2 ** 63, size=bands * rows, dtype=np.uint64)
    sigs = np.empty((len(shingles), bands * rows), dtype=np.uint64)
    for start in range(0, len(shingles), 64):
        chunk = shingles[start:start + 64]
        values = np.concatenate(chunk)
        with np.errstate(over="ignore"):
            permuted = (values[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)
        sigs[start:start + len(chunk)] = np.minimum.reduceat(permuted, np.cumsum([0, *map(len, chunk[:-1])]), axis=0)
    mix = rng.integers(1, 2 ** 63, size=rows, dtype=np.uint64)
    pairs = set()
    for band in range(bands):
        with np.errstate(over="ignore"):
            keys = (sigs[:, band * rows:(band + 1) * rows] * mix).sum(axis=1)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            pairs.update(itertools.combinations(sorted(order[s:e].tolist()), 2))
    return pairs


def exact_pairs(texts, candidates, threshold):
    from llm_recipes.corpus.steps import char_ngrams

    cache = {}

    def shingle_set(i):
        if i not in cache:
            cache[i] = set(char_ngrams(texts[i], 5))
        return cache[i]

    result = {}
    for i, j in candidates:
        a, b = shingle_set(i), shingle_set(j)
        jac = len(a & b) / len(a | b)
        if jac >= threshold:
            result[(i, j)] = jac
    return result


def all_pairs(texts, threshold):
    """Exact Jaccard of every pair: shingle-incidence matrix X (sparse), intersections X X^T."""
    from scipy import sparse

    from llm_recipes.corpus.steps import char_ngrams

    vocab, rows, cols = {}, [], []
    for i, t in enumerate(texts):
        ids = {vocab.setdefault(g, len(vocab)) for g in char_ngrams(t, 5)}
        rows += [i] * len(ids)
        cols += ids
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(texts), len(vocab)))
    sizes = np.asarray(x.sum(axis=1)).ravel()
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    jac = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    keep = jac >= threshold
    return {(int(i), int(j)): float(v) for i, j, v in zip(inter.row[keep], inter.col[keep], jac[keep])}


def truth(args, texts, groups):
    start = time.time()
    planted = {tuple(sorted(p)) for base, copies in groups.items() for p in itertools.combinations([base, *copies], 2)}
    shingles = hashed_shingles(texts)
    lsh = permissive_candidates(shingles)
    del shingles
    pairs = exact_pairs(texts, lsh | planted, args.threshold)
    notes = {"permissive_candidates": len(lsh), "planted_pairs": len(planted),
             "truth_pairs_outside_planted": len(set(pairs) - planted)}
    if len(texts) <= args.exhaustive:
        exhaustive = all_pairs(texts, args.threshold)
        notes["all_pairs_agrees"] = set(exhaustive) == set(pairs)
        notes["all_pairs_missed_by_permissive"] = len(set(exhaustive) - set(pairs))
        pairs = exhaustive
    notes["seconds"] = time.time() - start
    return pairs, notes


# --- scores ---

def cluster_pairs(groups):
    return {p for g in groups for p in itertools.combinations(sorted(g), 2)}


def prf(pred, truth_pairs):
    tp = len(pred & truth_pairs)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(truth_pairs) if truth_pairs else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def bench(args, n_docs):
    from llm_recipes.corpus.lsh_params import minhash_params
    from llm_recipes.reporting.report import markdown_table

    t = time.time()
    texts, groups = generate(n_docs, args.dup_frac)
    print(f"\n## {n_docs:,} documents ({sum(map(len, groups.values())):,} near-duplicate copies of "
          f"{len(groups):,} documents), generated in {time.time() - t:.1f}s")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as workdir:
        os.makedirs(f"{workdir}/in")
        for i, part in enumerate(np.array_split(np.arange(n_docs), args.workers)):
            with open(f"{workdir}/in/{i}.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps({"id": f"d{k:06d}", "text": texts[k]}, ensure_ascii=False) + "\n"
                             for k in part)
        results = {}
        for method in ("verified", *(() if args.no_plain else ("plain",)), "datasketch"):
            results[method] = run_method(args, method, workdir)
            print(f"{method}: {results[method]['seconds']:.1f}s, "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in results[method]["stages"].items())
                  + f"; load average {results[method]['load']:.1f}", flush=True)
    pairs, notes = truth(args, texts, groups)
    jaccards = np.array(sorted(pairs.values()))
    components = cluster_pairs(union_find_groups(n_docs, pairs))
    names = {"verified": f"ours, verified ({args.workers} workers)", "plain": f"ours, plain LSH ({args.workers} workers)",
             "datasketch": "datasketch MinHashLSH (1 process)"}
    for method, r in results.items():
        pred = cluster_pairs(r["groups"])
        rows.append([names[method], *(round(x, 4) for x in prf(pred, components)),
                     *(round(x, 4) for x in prf(pred, set(pairs))), round(n_docs / r["seconds"]),
                     round(r["seconds"], 1), round(r["cpu_seconds"], 1), round(r["peak_mb"]), round(r["load"], 1)])
        if r["core_seconds"]:
            rows.append([f"{names[method]}, core only (texts in memory -> clusters)", "", "", "", "", "", "",
                         round(n_docs / r["core_seconds"]), round(r["core_seconds"], 1), "", "", ""])
    ds = results["datasketch"]["seconds"] / results["verified"]["seconds"]
    ds_core = results["datasketch"]["core_seconds"] / results["verified"]["seconds"]
    print(f"truth: {len(pairs):,} pairs at Jaccard >= {args.threshold} (median {np.median(jaccards):.3f}), "
          f"{len(components):,} pairs within their connected components; "
          + ", ".join(f"{k} {v}" for k, v in notes.items() if k != "seconds") + f"; {notes['seconds']:.1f}s")
    print(f"buckets x hashes: {args.buckets} x {args.rows} (chosen for Jaccard {args.threshold} as the corpus stage "
          f"does: {minhash_params(args.threshold, 112, 0.95)[:2]}); throughput of ours (verified) / datasketch: {ds:.2f}x "
          f"end to end, {ds_core:.2f}x against datasketch's core alone")
    print(markdown_table(["method", "P (clusters)", "R (clusters)", "F1 (clusters)", "P (pairs)", "R (pairs)",
                          "F1 (pairs)", "docs/s", "seconds", "CPU s", "peak MB", "load"], rows))
    for m, r in results.items():
        print(f"- {names[m]}: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["stages"].items()))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[3000, 100000])
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--buckets", type=int, default=None, help="default: chosen from the threshold")
    parser.add_argument("--rows", type=int, default=None, help="default: chosen from the threshold")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dup_frac", type=float, default=0.2)
    parser.add_argument("--exhaustive", type=int, default=5000, help="all-pairs truth up to this many documents")
    parser.add_argument("--no_plain", action="store_true", help="skip the unverified run")
    parser.add_argument("--tmp", default=None, help="folder for the work files (default: the system's)")
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        return method_main(args)
    if args.buckets is None or args.rows is None:
        from llm_recipes.corpus.lsh_params import minhash_params

        args.buckets, args.rows, _, _ = minhash_params(args.threshold, 112, 0.95)  # the corpus stage's defaults
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} CPUs")
    for n in args.docs:
        bench(args, n)


if __name__ == "__main__":
    main()
