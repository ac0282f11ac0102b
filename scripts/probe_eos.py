"""EOS-boundary probe and report for SFT runs that differ in batch layout (recipes/packing-vs-padding).

    python scripts/probe_eos.py --config recipes/packing-vs-padding/probe.yaml

For every checkpoint of every run (and the shared base model as step 0) it asks each probe item's question three ways
(llm_recipes.evaluation.eos_probe): with the fact in the previous sample and [EOS] between (as a packed row joins
samples), with the same text joined by a newline instead (one sample), and the question alone (the floor). Recall =
greedy decoding gives the right name exactly; log p(reply) is scored too. The Tohoku/NTT poster found that packing
without a mask change teaches the model to treat [EOS] as a boundary (it stops recalling across it, from ~400 steps).
Verdicts (stats.verdict, t intervals paired over probe items): per arm and checkpoint, "recall without [EOS] > recall
across [EOS]", and for the packed arm "its [EOS] gap > the reference arm's gap" (padding: the same examples, no
cross-sample context), with the first step from which the claim holds at every later checkpoint.
With `require_equal_loss_tokens` it fails unless every run trained on the same loss tokens at every optimizer step.
Writes report.md, report.json, probe.png (recall and log p vs step per arm) and training.png.
"""

import json
import os
import time
from dataclasses import dataclass, field
from statistics import fmean as mean

from llm_recipes.config import RecipeError, parse, run
from llm_recipes.data import load_records
from llm_recipes.evaluation.eos_probe import CONDITIONS, boundary_verdicts, eval_recall, score_probe
from llm_recipes.generation import load
from llm_recipes.reporting.report import clear_report, markdown_table, read_report, write_report
from llm_recipes.reporting.stats import format_interval
from llm_recipes.training.common import all_checkpoints, require_model_dir
from llm_recipes.training.packing import read_steps


@dataclass
class ProbeArguments:
    output_dir: str = field(metadata={"help": "where report.json, report.md and the PNGs go"})
    runs: list[dict] = field(metadata={"help": "[{name, path}]: SFT output dirs; each checkpoint-* is probed"})
    probe_dataset: str = field(metadata={"help": "JSONL: context (previous sample), question, answer"})
    eval_dataset: str | None = field(default=None, metadata={
        "help": "JSONL: prompt, completion (held-out, answer copied from the prompt): recall and loss per checkpoint"})
    base_model: str | None = field(default=None, metadata={"help": "the runs' starting model, probed as step 0"})
    packed_run: str = field(default="packed", metadata={"help": "the run whose [EOS] gap is tested against reference"})
    reference_run: str = field(default="padding", metadata={"help": "the run without cross-sample context"})
    require_equal_loss_tokens: bool = field(default=True, metadata={
        "help": "fail unless all runs report the same loss tokens at every optimizer step (batch_layout runs)"})


ARGUMENTS = (ProbeArguments,)  # the dataclasses a recipe file for this stage fills


def probe_model(path, probe, evals):
    require_model_dir(path)
    model, tokenizer = load(path)
    scores = score_probe(model, tokenizer, probe)
    if evals:
        scores["eval_recall"], scores["eval_loss"] = eval_recall(model, tokenizer, evals)
    return scores


def train_losses(path):
    """(step, loss) pairs from the last checkpoint's trainer state."""
    with open(os.path.join(all_checkpoints(path, "set save_steps in the SFT recipe")[-1][1], "trainer_state.json"), encoding="utf-8") as f:
        return [(e["step"], e["loss"]) for e in json.load(f)["log_history"] if "loss" in e]


def check_loss_tokens(reports, runs):
    """Equal loss tokens at every optimizer step, and the same examples (same real tokens per step): when every answer
    has the same length, the loss-token counts alone would agree for any batches."""
    counts = {name: r.get("loss_tokens_per_step") for name, r in reports.items()}
    missing = [n for n, c in counts.items() if not c]
    if missing:
        raise RecipeError(f"runs: {missing[0]} reports no loss_tokens_per_step (train it with batch_layout set)")
    examples = {r["name"]: [s["real_tokens"] for s in read_steps(r["path"])] for r in runs}
    for what, per_run in (("loss tokens", counts), ("examples (real tokens)", examples)):
        (first, ref), *others = per_run.items()
        for name, c in others:
            if c != ref:
                step = next((i + 1 for i, (a, b) in enumerate(zip(ref, c)) if a != b), min(len(ref), len(c)) + 1)
                raise RecipeError(f"runs: {name} and {first} differ in {what} at optimizer step {step}; the "
                                  "comparison needs equal loss tokens (same data, seed, batch size and accumulation)")
    return sum(counts[first]) / len(counts[first])


def plot(results, losses, output_dir):
    from llm_recipes.reporting.plots import subplots

    fig, axes = subplots(1, 2, figsize=(12, 4))
    for ax, metric, label in zip(axes, ("recall", "logprob"), ("recall (greedy reply exact)", "mean log p(reply)")):
        for i, (name, rows) in enumerate(results.items()):
            steps = [s for s, _ in rows]
            ax.plot(steps, [mean(r["eos"][metric]) for _, r in rows], "-o", color=f"C{i}", label=f"{name}: across [EOS]")
            ax.plot(steps, [mean(r["no_eos"][metric]) for _, r in rows], "--", color=f"C{i}",
                    label=f"{name}: same text, no [EOS]")
        rows = next(iter(results.values()))
        ax.plot([s for s, _ in rows], [mean(r["no_fact"][metric]) for _, r in rows], ":", color="gray",
                label="question alone")
        ax.set(xlabel="SFT step", ylabel=label, title=f"EOS-boundary probe: {label}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "probe.png"), dpi=120)
    fig, axes = subplots(1, 3, figsize=(13, 3.8))
    for i, (name, rows) in enumerate(results.items()):
        axes[0].plot(*zip(*losses[name]), color=f"C{i}", label=name)
        for ax, key in zip(axes[1:], ("eval_loss", "eval_recall")):
            points = [(s, r[key]) for s, r in rows if key in r]
            if points:
                ax.plot(*zip(*points), "-o", color=f"C{i}", label=name)
    for ax, title in zip(axes, ("train loss", "held-out completion loss", "held-out in-context recall")):
        ax.set(xlabel="step", title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "training.png"), dpi=120)


def verdict_cell(v):
    return f"{format_interval(v['mean_difference'], v['low'], v['high'])} {v['verdict']}"


def main(args: ProbeArguments):
    start = time.time()
    if not args.runs or any(not {"name", "path"} <= set(r) for r in args.runs):
        raise RecipeError("runs: expected a list of {name, path}")
    reports = {r["name"]: read_report(r["path"]) for r in args.runs}
    unfinished = [n for n, rep in reports.items() if rep is None]
    if unfinished:
        raise RecipeError(f"runs: {unfinished[0]} has no report.json (the SFT run did not complete)")
    loss_tokens = check_loss_tokens(reports, args.runs) if args.require_equal_loss_tokens else None
    clear_report(args.output_dir)
    probe = list(load_records(args.probe_dataset, required_keys=["context", "question", "answer"],
                              key="probe_dataset"))
    evals = list(load_records(args.eval_dataset, required_keys=["prompt", "completion"],
                              key="eval_dataset")) if args.eval_dataset else None
    base = [(0, probe_model(args.base_model, probe, evals))] if args.base_model else []
    results, losses = {}, {}
    for run_ in args.runs:
        rows = list(base)
        for step, path in all_checkpoints(run_["path"], "set save_steps in the SFT recipe"):
            print(f"probing {run_['name']} step {step}", flush=True)
            rows.append((step, probe_model(path, probe, evals)))
        results[run_["name"]], losses[run_["name"]] = rows, train_losses(run_["path"])
    reference = results.get(args.reference_run)
    verdicts = {metric: {name: boundary_verdicts(rows, reference if name != args.reference_run else None, metric)
                         for name, rows in results.items()} for metric in ("recall", "logprob")}
    os.makedirs(args.output_dir, exist_ok=True)
    plot(results, losses, args.output_dir)
    names = list(results)
    recall_rows = [[step, *[f"{mean(results[n][i][1]['eos']['recall']):.2f} / "
                            f"{mean(results[n][i][1]['no_eos']['recall']):.2f}" for n in names],
                    mean(results[names[0]][i][1]["no_fact"]["recall"])]
                   for i, (step, _) in enumerate(results[names[0]])]
    sections = []
    for metric in ("recall", "logprob"):
        rows = [[row["step"], *[verdict_cell(verdicts[metric][n]["rows"][i]["gap"]) for n in names],
                 *([verdict_cell(verdicts[metric][args.packed_run]["rows"][i]["vs_reference"])]
                   if args.packed_run in results and reference else [])]
                for i, row in enumerate(verdicts[metric][names[0]]["rows"])]
        onsets = {n: verdicts[metric][n]["onset"] for n in names}
        sections.append(
            f"### {metric}: [EOS] gap (no [EOS] - across [EOS]), mean [95% t interval over {len(probe)} items]\n\n"
            + markdown_table(["step", *[f"{n} gap" for n in names],
                              f"{args.packed_run} gap - {args.reference_run} gap"], rows)
            + "\n\nOnset (first step from which the claim holds at every later checkpoint): "
            + "; ".join(f"{n}: gap > 0 from {o['gap']}" + (f", gap > {args.reference_run}'s from {o['vs_reference']}"
                                                           if n == args.packed_run else "") for n, o in onsets.items()))
    packed = verdicts["recall"].get(args.packed_run)
    headline = ("no packed run" if not packed else
                f"packing makes [EOS] a boundary (recall gap > {args.reference_run}'s) from step "
                f"{packed['onset']['vs_reference']}" if packed["onset"]["vs_reference"] is not None else
                f"not shown: the packed arm's recall gap is not above {args.reference_run}'s at the last checkpoints")
    headers = ["run", "train s", "real tokens/s", "real-token fraction", "loss tokens/step", "final train loss",
               "held-out recall", "held-out loss"]
    table = [[name, rep.get("train_runtime_s"), rep.get("real_tokens_per_s"), rep.get("real_token_fraction"),
              loss_tokens, losses[name][-1][1], results[name][-1][1].get("eval_recall"),
              results[name][-1][1].get("eval_loss")] for name, rep in reports.items()]
    text = (f"# Packing vs padding: EOS-boundary probe, {len(probe)} items, {len(evals or [])} held-out prompts\n\n"
            f"**Verdict: {headline}.**\n\n{markdown_table(headers, table)}\n\nRecall across [EOS] / without [EOS] "
            f"(greedy reply exact; last column: question alone):\n\n"
            f"{markdown_table(['step', *names, 'no fact'], recall_rows)}\n\n" + "\n\n".join(sections)
            + "\n\n![probe](probe.png)\n![training](training.png)\n")
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    summary = {name: [{"step": step, **{f"{m}_{c}": mean(r[c][m]) for c in CONDITIONS for m in ("recall", "logprob")},
                       **{k: r[k] for k in ("eval_recall", "eval_loss") if k in r}} for step, r in rows]
               for name, rows in results.items()}
    return write_report(args.output_dir, "probe_eos", {
        "probe_items": len(probe), "eval_prompts": len(evals or []), "loss_tokens_per_step": loss_tokens,
        "headline": headline, "verdicts": verdicts,
        "runs": {n: {"layout": reports[n].get("batch_layout"), "train_runtime_s": reports[n].get("train_runtime_s"),
                     "real_tokens_per_s": reports[n].get("real_tokens_per_s"),
                     "real_token_fraction": reports[n].get("real_token_fraction"), "probe": summary[n]}
                 for n in results}}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
