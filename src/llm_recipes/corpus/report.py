"""The corpus stage's executors, accounting and report (counts from datatrove's stats files, examples, plots)."""

import glob
import json
import os

from llm_recipes.reporting.report import markdown_table, write_report


def make_executor(args, name, pipeline, depends, tasks):
    """datatrove's LocalPipelineExecutor, SlurmPipelineExecutor or RayPipelineExecutor, chosen by `executor`."""
    options = dict(args.executor_options or {})
    common = dict(pipeline=pipeline, tasks=tasks, depends=depends, logging_dir=f"{args.output_dir.rstrip('/')}/logs/{name}")
    if args.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        options.setdefault("time", "24:00:00")
        options.setdefault("partition", "cpu")
        return SlurmPipelineExecutor(**common, job_name=f"corpus_{name}", **options)
    if args.executor == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(**common, workers=args.workers, **options)
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(**common, workers=args.workers, **options)


def write_slurm_scripts(stages):
    """Dry run for Slurm: write each stage's sbatch script (as datatrove would submit it) without submitting."""
    paths = []
    for stage in stages:
        script = stage.get_launch_file_contents(
            stage.get_sbatch_args(min(stage.tasks, stage.max_array_size)),
            f"launch_pickled_pipeline {stage.logging_dir.resolve_paths('executor.pik')}")
        with stage.logging_dir.open("launch_script.slurm", "w") as f:
            f.write(script)
        paths.append(stage.logging_dir.resolve_paths("launch_script.slurm"))
    return paths


def summarize(out, names):
    """Counts from datatrove's per-task stats files (they survive resumed runs): read, removed per rule, PII masked."""
    from datatrove.utils.stats import PipelineStats

    totals = {}
    for f in sorted(glob.glob(f"{out}/logs/*/stats/*.json")):
        stage = os.path.basename(os.path.dirname(os.path.dirname(f)))
        with open(f, encoding="utf-8") as fh:
            steps = PipelineStats.from_json(json.load(fh)).stats
        for step in steps:
            for key, value in step.stats.items():
                total = value["total"] if isinstance(value, dict) else getattr(value, "total", value)
                counts = totals.setdefault((stage, step.name), {})
                counts[key] = counts.get(key, 0) + total

    def count(stage, step, key):
        return int(totals.get((stage, step), {}).get(key, 0))

    removed = {rule: count(stage, step, "invalid" if rule == "invalid" else "dropped")
               for rule, (stage, step) in names["removed"].items()}
    read = count("1_filter", names["read"], "documents") + removed.get("invalid", 0)
    masked = {kind: count("5_dedup_and_pii", names["pii"], f"{kind}_masked")
              for kind in ("email", "ip", "phone", "postal_code", "my_number", "credit_card")}
    return read, removed, masked


def count_kept(out):
    return sum(1 for f in glob.glob(f"{out}/kept/*.jsonl") for _ in open(f, encoding="utf-8"))


def minhash_curve(buckets, rows, points=(0.7, 0.8, 0.9)):
    """LSH S-curve: P(a pair of Jaccard s shares a bucket) = 1 - (1 - s^r)^b; threshold ~ (1/b)^(1/r)."""
    return (1 / buckets) ** (1 / rows), {s: 1 - (1 - s ** rows) ** buckets for s in points}


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values, left = ["read"], [read], read
    for rule, n in removed.items():
        left -= n
        labels.append(f"- {rule} ({n})")
        values.append(left)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1))
    ax.barh(labels[::-1], values[::-1], color="#4c72b0")
    ax.set_xlabel("documents remaining")
    ax.set_title("corpus funnel")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_scurve(path, buckets, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [i / 100 for i in range(101)]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(xs, [1 - (1 - s ** rows) ** buckets for s in xs])
    ax.axvline((1 / buckets) ** (1 / rows), color="gray", linestyle="--", label="threshold (1/b)^(1/r)")
    ax.set_xlabel("Jaccard similarity")
    ax.set_ylabel("P(detected as duplicate)")
    ax.set_title(f"MinHash LSH, b={buckets} buckets x r={rows} hashes")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_corpus_report(args, read, kept, removed, masked, threshold, probabilities, wall_time_s):
    out = args.output_dir.rstrip("/")
    examples = {rule: removed_examples(out, rule) for rule, n in removed.items() if n}
    table = markdown_table(["documents", "count", "share of read"],
                           [["read", read, "100%"], *[[f"removed: {rule}", n, f"{n / max(read, 1):.1%}"]
                                                      for rule, n in removed.items()],
                            ["kept", kept, f"{kept / max(read, 1):.1%}"]])
    masked_line = ", ".join(f"{k} {v}" for k, v in masked.items() if v) or "none"
    lines = [f"# Corpus report: {args.input_path}", "", table, "", f"PII masked (documents): {masked_line}", "",
             f"MinHash: {args.minhash_buckets} buckets x {args.minhash_hashes_per_bucket} hashes, "
             f"{args.minhash_ngrams}-gram {args.minhash_shingles}; threshold ~ {threshold:.3f}", "", "## Examples"]
    for rule, items in examples.items():
        lines += [f"- **{rule}**: " + " | ".join(f"`{e['id']}` ({e['reason']}) {e['text']}" for e in items)]
    with open(f"{out}/report.md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    plot_funnel(f"{out}/funnel.png", read, removed)
    plot_scurve(f"{out}/minhash_scurve.png", args.minhash_buckets, args.minhash_hashes_per_bucket)
    print("\n" + table + f"\nPII masked (documents): {masked_line}\nreport: {out}/report.md, {out}/funnel.png")
    return write_report(args.output_dir, "corpus", {
        "read": read, "kept": kept, "removed": removed, "masked": masked, "examples": examples,
        "minhash": {"threshold": threshold, "p_detect": probabilities}}, wall_time_s=wall_time_s)
