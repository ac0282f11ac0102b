"""The corpus stage's accounting and report: counts from datatrove's stats files (read, removed per rule, PII masked,
cost per stage), removed examples, the funnel and S-curve plots, report.md and report.json."""

import glob
import json
import os

from llm_recipes.reporting.report import markdown_table, write_report


def stage_totals(out):
    """datatrove's per-task stats files (they survive resumed runs) summed: {(stage, step name): {stat: total}}, with
    each step's seconds under "time" and each stage's completed task count under (stage, None)."""
    from datatrove.utils.stats import PipelineStats

    totals = {}
    for f in sorted(glob.glob(f"{out}/logs/*/stats/*.json")):
        stage = os.path.basename(os.path.dirname(os.path.dirname(f)))
        with open(f, encoding="utf-8") as fh:
            steps = PipelineStats.from_json(json.load(fh)).stats
        totals.setdefault((stage, None), {"tasks": 0})["tasks"] += 1
        for step in steps:
            counts = totals.setdefault((stage, step.name), {})
            counts["time"] = counts.get("time", 0) + step.time_stats.total
            for key, value in step.stats.items():
                total = value["total"] if isinstance(value, dict) else getattr(value, "total", value)
                counts[key] = counts.get(key, 0) + total
    return totals


def summarize(out, names):
    """Counts from datatrove's per-task stats files: read, removed per rule, PII masked."""
    totals = stage_totals(out)

    def count(stage, step, key):
        return int(totals.get((stage, step), {}).get(key, 0))

    removed = {rule: count(stage, step, "invalid" if rule == "invalid" else "dropped")
               for rule, (stage, step) in names["removed"].items()}
    read = count("1_filter", names["read"], "documents") + removed.get("invalid", 0)
    masked = {kind: count("5_dedup_and_pii", names["pii"], f"{kind}_masked")
              for kind in ("email", "ip", "phone", "postal_code", "my_number", "credit_card")}
    return read, removed, masked


VERIFY_STATS = ("candidate_pairs", "candidate_groups", "comparisons", "verified_pairs")


def stage_costs(out, wall=None):
    """Per stage: tasks, task-seconds (datatrove's step timers summed over tasks, all runs) and wall seconds of this
    invocation (local executor); the verification's counts; sentence dedup's edited documents."""
    totals = stage_totals(out)
    stages = {}
    for (stage, step), counts in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        row = stages.setdefault(stage, {"tasks": 0, "task_seconds": 0.0, "wall_seconds": (wall or {}).get(stage)})
        if step is None:
            row["tasks"] = counts["tasks"]
            continue
        row["task_seconds"] = round(row["task_seconds"] + counts.get("time", 0), 2)
        for key in (*VERIFY_STATS, "edited"):
            if key in counts:
                row[key] = int(counts[key])
    return stages


def count_kept(out):
    return sum(1 for f in glob.glob(f"{out}/kept/*.jsonl") for _ in open(f, encoding="utf-8"))


def removed_examples(out, rule, k=2):
    examples = []
    for f in sorted(glob.glob(f"{out}/removed/{rule}/*.jsonl")):
        for line in open(f, encoding="utf-8"):
            record = json.loads(line)
            text = record.get("text", record.get("raw", ""))
            examples.append({"id": record.get("id", f"{record.get('file')}:{record.get('line')}"),
                             "reason": record.get("metadata", {}).get("filter_reason", record.get("error")),
                             "text": text[:120].replace("\n", " ")})
            if len(examples) == k:
                return examples
    return examples


def plot_funnel(path, read, removed):
    from llm_recipes.reporting.plots import subplots

    labels, values, left = ["read"], [read], read
    for rule, n in removed.items():
        left -= n
        labels.append(f"- {rule} ({n})")
        values.append(left)
    fig, ax = subplots(figsize=(7, 0.45 * len(labels) + 1))
    ax.barh(labels[::-1], values[::-1], color="#4c72b0")
    ax.set_xlabel("documents remaining")
    ax.set_title("corpus funnel")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_scurve(path, buckets, rows, threshold=None, chosen_by=None):
    """The LSH S-curve of buckets x rows; with `threshold`, its false-positive / false-negative areas shaded."""
    from llm_recipes.reporting.plots import subplots

    xs = [i / 200 for i in range(201)]
    ps = [1 - (1 - s ** rows) ** buckets for s in xs]
    fig, ax = subplots(figsize=(5.5, 3.8))
    ax.plot(xs, ps, color="#4c72b0", label=f"b={buckets} x r={rows}" + (f" ({chosen_by})" if chosen_by else ""))
    ax.axvline((1 / buckets) ** (1 / rows), color="gray", linestyle=":", label="(1/b)^(1/r)")
    if threshold is not None:
        below = [x <= threshold for x in xs]
        ax.fill_between(xs, ps, 0, where=below, color="#dd8452", alpha=0.3, label="false-positive area")
        ax.fill_between(xs, ps, 1, where=[not b for b in below], color="#c44e52", alpha=0.3,
                        label="false-negative area")
        ax.axvline(threshold, color="black", linestyle="--", label=f"Jaccard threshold {threshold}")
    ax.set_xlabel("Jaccard similarity")
    ax.set_ylabel("P(candidate pair)")
    ax.set_title(f"MinHash LSH: {buckets} buckets x {rows} hashes")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_corpus_report(args, read, kept, removed, masked, threshold, probabilities, wall_time_s, chosen_by=None,
                        stages=None):
    out = args.output_dir.rstrip("/")
    stages = stages or {}
    examples = {rule: removed_examples(out, rule) for rule, n in removed.items() if n}
    table = markdown_table(["documents", "count", "share of read"],
                           [["read", read, "100%"], *[[f"removed: {rule}", n, f"{n / max(read, 1):.1%}"]
                                                      for rule, n in removed.items()],
                            ["kept", kept, f"{kept / max(read, 1):.1%}"]])
    cost = markdown_table(["stage", "tasks", "task-seconds", "wall seconds", "notes"], [
        [name, row["tasks"], row["task_seconds"], "" if row["wall_seconds"] is None else row["wall_seconds"],
         ", ".join(f"{k} {row[k]}" for k in (*VERIFY_STATS, "edited") if k in row)] for name, row in stages.items()])
    masked_line = ", ".join(f"{k} {v}" for k, v in masked.items() if v) or "none"
    verify = stages.get("3c_minhash_verify")
    lines = [f"# Corpus report: {args.input_path}", "", table, "", f"PII masked (documents): {masked_line}", "",
             f"MinHash: {args.minhash_buckets} buckets x {args.minhash_hashes_per_bucket} hashes ({chosen_by}), "
             f"{args.minhash_ngrams}-gram {args.minhash_shingles}; S-curve midpoint ~ {threshold:.3f}; "
             + (f"candidate pairs verified by exact Jaccard >= {args.minhash_threshold}: {verify.get('candidate_pairs', 0)}"
                f" candidate pairs, {verify.get('comparisons', 0)} comparisons, {verify.get('verified_pairs', 0)} kept"
                if verify else "no verification (datatrove's plain LSH)"),
             "", "## Cost per stage", "", cost, "", "## Examples"]
    for rule, items in examples.items():
        lines += [f"- **{rule}**: " + " | ".join(f"`{e['id']}` ({e['reason']}) {e['text']}" for e in items)]
    with open(f"{out}/report.md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    plot_funnel(f"{out}/funnel.png", read, removed)
    plot_scurve(f"{out}/minhash_scurve.png", args.minhash_buckets, args.minhash_hashes_per_bucket,
                args.minhash_threshold, chosen_by)
    print("\n" + table + f"\nPII masked (documents): {masked_line}\n\n" + cost
          + f"\nreport: {out}/report.md, {out}/funnel.png, {out}/minhash_scurve.png")
    return write_report(args.output_dir, "corpus", {
        "read": read, "kept": kept, "removed": removed, "masked": masked, "examples": examples, "stages": stages,
        "minhash": {"buckets": args.minhash_buckets, "hashes_per_bucket": args.minhash_hashes_per_bucket,
                    "chosen_by": chosen_by, "verify_threshold": args.minhash_threshold if args.minhash_verify else None,
                    "threshold": threshold, "p_detect": probabilities,
                    **({"verify": {k: verify.get(k, 0) for k in VERIFY_STATS}} if verify else {})}},
        wall_time_s=wall_time_s)
