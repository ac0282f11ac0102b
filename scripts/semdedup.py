"""SemDeDup (Abbas et al. 2023, arXiv 2303.09540): remove semantic duplicates, documents that say the same thing in
other words, which MinHash (surface n-grams) misses. Runs after the corpus stage, on its kept/ documents.

    python scripts/semdedup.py --config recipes/semdedup/semdedup.yaml
    python scripts/semdedup.py --config recipes/semdedup-ja-web/semdedup.yaml --dry_run true   # the plan only

1. embed every document with a local Hugging Face model: mean of the last hidden states over the real tokens,
   L2-normalized (`prefix` for models trained with one, e.g. "passage: " for multilingual-e5);
2. k-means (scikit-learn) into `num_clusters` clusters;
3. in each cluster, order the documents by cosine similarity to the centroid and remove every document whose cosine
   similarity to a document earlier in that order exceeds 1 - epsilon. The first of each group of duplicates is kept:
   `keep: farthest` (the paper's and the reference code's default, keep_hard: the least prototypical document) or
   `closest` (the most prototypical one).
Writes output_dir/kept/ (JSONL, records as read), removed/semdedup/ (with the cluster, the duplicated document's id and
the similarity in `metadata`), report.json (read = kept + removed; removed per epsilon in `epsilons`; seconds per
step), report.md and epsilon.png.
"""

import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import check_choices, parse, run
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import check_output_dir, clear_report, markdown_table, write_report


@dataclass
class SemDedupArguments:
    input_path: str = field(metadata={"help": "documents: a corpus stage's kept/ folder, a JSONL/Parquet file or a hub id"})
    output_dir: str
    model_name_or_path: str = field(metadata={"help": "embedding model (local directory; any AutoModel)"})
    dataset_config: str | None = None
    dataset_split: str = "train"
    max_documents: int | None = field(default=None, metadata={"help": "the first N documents only"})
    text_key: str = "text"
    id_key: str = "id"
    prefix: str = field(default="", metadata={"help": "prepended to every text (multilingual-e5: 'passage: ')"})
    max_length: int = 512
    batch_size: int = 32
    num_clusters: int = 10
    minibatch_kmeans: bool = field(default=False, metadata={"help": "MiniBatchKMeans (millions of documents)"})
    epsilon: float = field(default=0.05, metadata={"help": "remove at cosine similarity > 1 - epsilon (written out)"})
    epsilons: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 0.3],
                                  metadata={"help": "also count what each of these would remove"})
    keep: str = field(default="farthest", metadata={"help": "farthest (paper) | closest: which duplicate is kept"})
    seed: int = 0
    dry_run: bool = field(default=False, metadata={"help": "print the plan; load nothing"})


ARGUMENTS = (SemDedupArguments,)


def embed(texts, model_dir, max_length, batch_size):
    """Mean-pooled last hidden states over the attention mask, L2-normalized (numpy, one row per text)."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = []
    with torch.no_grad():
        for i in tqdm(range(0, len(texts), batch_size), desc="embed"):
            batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            rows.append(torch.nn.functional.normalize(pooled.float(), dim=-1).numpy())
    return np.concatenate(rows)


def cluster(embeddings, k, seed, minibatch=False):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    cls = MiniBatchKMeans if minibatch else KMeans
    kmeans = cls(n_clusters=k, random_state=seed, n_init=3).fit(embeddings)
    return kmeans.labels_, kmeans.cluster_centers_


def duplicates(embeddings, labels, centroids, keep="farthest"):
    """Per document: (max cosine similarity to a document earlier in its cluster's order, that document's index);
    the order is by similarity to the centroid, ascending for keep=farthest (the reference code's keep_hard) and
    descending for keep=closest. The first document of each cluster gets similarity -1 (always kept)."""
    import numpy as np

    best, partner = np.full(len(labels), -1.0), np.full(len(labels), -1)
    for c in range(len(centroids)):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        centroid = centroids[c] / max(np.linalg.norm(centroids[c]), 1e-12)
        to_centroid = embeddings[members] @ centroid
        order = members[np.argsort(to_centroid if keep == "farthest" else -to_centroid, kind="stable")]
        sims = np.triu(embeddings[order] @ embeddings[order].T, k=1)  # [i, j]: i earlier than j
        sims[np.tril_indices(len(order))] = -1.0
        best[order[1:]] = sims[:, 1:].max(axis=0)
        partner[order[1:]] = order[sims[:, 1:].argmax(axis=0)]
    return best, partner


def plot_epsilons(path, counts, read):
    from llm_recipes.reporting.plots import subplots

    eps = sorted(float(e) for e in counts)
    fig, ax = subplots(figsize=(5, 3.5))
    ax.plot(eps, [counts[str(e)] / max(read, 1) for e in eps], marker="o")
    ax.set_xlabel("epsilon (remove at cosine similarity > 1 - epsilon)")
    ax.set_ylabel("share of documents removed")
    ax.set_title("SemDeDup")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_jsonl(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main(args: SemDedupArguments):
    start = time.time()
    check_choices(args, keep=("farthest", "closest"))
    if not 0 < args.epsilon < 1 or any(not 0 < e < 1 for e in args.epsilons):
        raise RecipeError(f"epsilon / epsilons: every value must be in (0, 1); got {args.epsilon}, {args.epsilons}")
    if args.num_clusters < 1:
        raise RecipeError(f"num_clusters: {args.num_clusters} must be at least 1")
    if args.dry_run:
        print(markdown_table(["step", "plan"], [
            ["documents", f"{args.input_path}{':' + args.dataset_config if args.dataset_config else ''} "
                          f"({args.max_documents or 'all'} documents, text key {args.text_key})"],
            ["embed", f"{args.model_name_or_path}, mean-pooled last hidden states, max_length {args.max_length}, "
                      f"prefix {args.prefix!r}"],
            ["cluster", f"{'MiniBatchKMeans' if args.minibatch_kmeans else 'KMeans'} k={args.num_clusters}"],
            ["dedup", f"cosine > 1 - {args.epsilon} within a cluster, keep the {args.keep} from the centroid; also "
                      f"counted at epsilon {args.epsilons}"],
            ["writes", f"{args.output_dir}/kept, {args.output_dir}/removed/semdedup"]]))
        return None
    from llm_recipes.data import load_records
    from llm_recipes.training.common import require_model_dir

    model_dir = require_model_dir(args.model_name_or_path, "model_name_or_path", "config.json")
    records = load_records(args.input_path, args.dataset_split, text_keys=[args.text_key], key="input_path",
                           config_name=args.dataset_config)
    if args.max_documents:
        records = records.select(range(min(args.max_documents, len(records))))
    records = records.to_list()
    if len(records) < args.num_clusters:
        raise RecipeError(f"num_clusters: {args.num_clusters} clusters for {len(records)} documents")
    check_output_dir(args.output_dir, {k: v for k, v in vars(args).items() if k not in ("dry_run", "batch_size")})
    clear_report(args.output_dir)
    seconds = {}
    t0 = time.time()
    embeddings = embed([args.prefix + r[args.text_key] for r in records], model_dir, args.max_length, args.batch_size)
    seconds["embed"] = time.time() - t0
    t0 = time.time()
    labels, centroids = cluster(embeddings, args.num_clusters, args.seed, args.minibatch_kmeans)
    seconds["kmeans"] = time.time() - t0
    t0 = time.time()
    best, partner = duplicates(embeddings, labels, centroids, args.keep)
    seconds["dedup"] = time.time() - t0
    by_epsilon = {str(e): int((best > 1 - e).sum()) for e in sorted({*args.epsilons, args.epsilon})}
    removed_mask = best > 1 - args.epsilon

    def doc_id(i):
        return records[i].get(args.id_key, i)

    kept = [r for r, gone in zip(records, removed_mask) if not gone]
    removed = [{**r, "metadata": {**(r.get("metadata") or {}), "semdedup_cluster": int(labels[i]),
                                  "duplicate_of": doc_id(int(partner[i])), "cosine": round(float(best[i]), 4)}}
               for i, r in enumerate(records) if removed_mask[i]]
    write_jsonl(os.path.join(args.output_dir, "kept", "00000.jsonl"), kept)
    write_jsonl(os.path.join(args.output_dir, "removed", "semdedup", "00000.jsonl"), removed)
    if len(records) != len(kept) + len(removed):
        raise RecipeError(f"{args.output_dir}: accounting mismatch: read {len(records)} != kept {len(kept)} + removed "
                          f"{len(removed)}")
    plot_epsilons(os.path.join(args.output_dir, "epsilon.png"), by_epsilon, len(records))
    sizes = sorted(int((labels == c).sum()) for c in range(args.num_clusters))
    table = markdown_table(["epsilon", "cosine >", "removed", "share"],
                           [[e, round(1 - float(e), 4), n, f"{n / len(records):.1%}"] for e, n in by_epsilon.items()])
    texts = {doc_id(i): r[args.text_key] for i, r in enumerate(records)}
    pairs = sorted(removed, key=lambda r: -r["metadata"]["cosine"])[:3]
    lines = [f"# SemDeDup: {args.input_path}", "", f"read {len(records)} -> kept {len(kept)}, removed {len(removed)} at "
             f"epsilon {args.epsilon} ({args.model_name_or_path}, k={args.num_clusters}, keep {args.keep})", "", table,
             "", "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + f"; cluster sizes {sizes}", "",
             "## Most similar removed pairs", *[
                 f"- {r['metadata']['cosine']}: `{r.get(args.id_key)}` {r[args.text_key][:80]!r} ~ "
                 f"`{r['metadata']['duplicate_of']}` {texts[r['metadata']['duplicate_of']][:80]!r}" for r in pairs]]
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[2:7]))
    return write_report(args.output_dir, "semdedup", {
        "read": len(records), "kept": len(kept), "removed": {"semdedup": len(removed)}, "epsilon": args.epsilon,
        "removed_by_epsilon": by_epsilon, "num_clusters": args.num_clusters, "cluster_sizes": sizes, "keep": args.keep,
        "model": args.model_name_or_path, "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "documents_per_second": round(len(records) / max(sum(seconds.values()), 1e-9), 1)},
        wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
