"""EOS-boundary probe and report for SFT arms that differ in batch layout, each trained with several seeds
(recipes/packing-vs-padding).

    python research/probe_eos.py --config recipes/packing-vs-padding/probe.yaml

For every checkpoint of every run (and the shared base model as step 0) it asks each probe item's question three ways
(llm_recipes.evaluation.eos_probe): with the fact in the previous sample and [EOS] between (as a packed row joins
samples), with the same text joined by a newline instead (one sample), and the question alone (the floor). Recall =
greedy decoding gives the right name exactly; log p(reply) is scored too. The Tohoku/NTT poster found that packing
without a mask change teaches the model to treat [EOS] as a boundary (it stops recalling across it, from ~400 steps).
Verdicts (stats.verdict): per arm and checkpoint, "recall without [EOS] > recall across [EOS]", and for the packed arm
"its [EOS] gap > the reference arm's gap" (padding: the same examples, no cross-sample context), with the first step
from which the claim holds at every later checkpoint. With several seeds per arm the unit is the seed (per-seed means
over the items, paired by seed position); with one seed, the probe items.
With `require_equal_loss_tokens` it fails unless the arms' runs of each seed trained on the same loss tokens (and the
same examples) at every optimizer step. Writes report.md, report.json (per run: `runs.<run folder>.final`, the last
checkpoint's figures, which research/verdict.py reads), probe.png (recall and log p vs step per arm) and training.png.
"""

import json
import os
import time
from dataclasses import dataclass, field
from statistics import fmean as mean

from llm_recipes.config import parse, run, with_seeds
from llm_recipes.data import load_records
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation.eos_probe import (
    CONDITIONS,
    METRICS,
    PAIRS,
    boundary_verdicts,
    eval_recall,
    final_figures,
    plot_probe,
    score_probe,
)
from llm_recipes.generation import load
from llm_recipes.reporting.report import clear_report, markdown_table, read_report, write_report
from llm_recipes.reporting.stats import format_interval
from llm_recipes.training.batch_layouts import read_steps
from llm_recipes.training.common import all_checkpoints, require_model_dir


@dataclass
class ProbeArguments:
    output_dir: str = field(metadata={"help": "where report.json, report.md and the PNGs go"})
    arms: dict = field(metadata={"help": "{arm: [SFT output dir of seed 1, seed 2, ...]} (or {arm: '<dir>-s{seed}'} "
                                         "with seeds): every checkpoint-* is probed; seed i of every arm at position i"})
    probe_dataset: str = field(metadata={"help": "JSONL: context (previous sample), question, answer"})
    eval_dataset: str | None = field(default=None, metadata={
        "help": "JSONL: prompt, completion (held-out, answer copied from the prompt): recall and loss per checkpoint"})
    base_model: str | None = field(default=None, metadata={"help": "the runs' starting model, probed as step 0"})
    packed_arm: str = field(default="packed", metadata={"help": "the arm whose [EOS] gap is tested against reference"})
    reference_arm: str = field(default="padding", metadata={"help": "the arm without cross-sample context"})
    require_equal_loss_tokens: bool = field(default=True, metadata={
        "help": "fail unless each seed's runs report the same loss tokens at every optimizer step (batch_layout runs)"})
    seeds: list[int] | None = field(default=None, metadata={"help": "fill {seed} in arms' run paths"})

    def __post_init__(self):  # {arm: "<dir>-s{seed}"} with seeds -> {arm: [one run dir per seed]}, as in verdict.py
        self.arms = {arm: with_seeds(runs, self.seeds) if self.seeds else runs for arm, runs in self.arms.items()}


ARGUMENTS = (ProbeArguments,)  # the dataclasses a recipe file for this stage fills


def run_name(path):
    return os.path.basename(os.path.normpath(path))


def probe_model(path, probe, evals):
    model, tokenizer = load(require_model_dir(path))
    scores = score_probe(model, tokenizer, probe)
    if evals:
        scores["eval_recall"], scores["eval_loss"] = eval_recall(model, tokenizer, evals)
    return scores


def train_losses(path):
    """(step, loss) pairs from the last checkpoint's trainer state."""
    with open(os.path.join(all_checkpoints(path, "set save_steps in the SFT recipe")[-1][1], "trainer_state.json"),
              encoding="utf-8") as f:
        return [(e["step"], e["loss"]) for e in json.load(f)["log_history"] if "loss" in e]


def check_loss_tokens(reports, runs):
    """Equal loss tokens at every optimizer step, and the same examples (same real tokens per step), across the runs of
    one seed ({arm: run dir}): when every answer has the same length, the loss-token counts alone would agree for any
    batches."""
    counts = {arm: reports[path].get("loss_tokens_per_step") for arm, path in runs.items()}
    missing = [arm for arm, c in counts.items() if not c]
    if missing:
        raise RecipeError(f"arms: {runs[missing[0]]} reports no loss_tokens_per_step (train it with batch_layout set)")
    examples = {arm: [s["real_tokens"] for s in read_steps(path)] for arm, path in runs.items()}
    for what, per_run in (("loss tokens", counts), ("examples (real tokens)", examples)):
        (first, ref), *others = per_run.items()
        for arm, c in others:
            if c != ref:
                step = next((i + 1 for i, (a, b) in enumerate(zip(ref, c)) if a != b), min(len(ref), len(c)) + 1)
                raise RecipeError(f"arms: {run_name(runs[arm])} and {run_name(runs[first])} differ in {what} at "
                                  f"optimizer step {step}; the comparison needs equal loss tokens (same data, seed, "
                                  "batch size and accumulation)")
    return sum(counts[first]) / len(counts[first])


def pooled(seed_rows):
    """One arm's [(step, scores)] with, per condition and metric, one value per seed (the mean over items), or the
    items themselves when there is one seed: the unit the verdicts pair over."""
    steps = [step for step, _ in seed_rows[0]]
    if any([s for s, _ in rows] != steps for rows in seed_rows):
        raise RecipeError(f"arms: the seeds' runs have different checkpoints ({[[s for s, _ in r] for r in seed_rows]})")

    def values(i, c, m):
        return seed_rows[0][i][1][c][m] if len(seed_rows) == 1 else [mean(rows[i][1][c][m]) for rows in seed_rows]

    conditions = [c for c in CONDITIONS if c in seed_rows[0][0][1]]
    return [(step, {c: {m: values(i, c, m) for m in METRICS} for c in conditions}) for i, step in enumerate(steps)]


def verdict_cell(v):
    return f"{format_interval(v['mean_difference'], v['low'], v['high'])} {v['verdict']}"


def main(args: ProbeArguments):
    start = time.time()
    if not args.arms or any(not isinstance(p, list) or not p for p in args.arms.values()) or \
            len({len(p) for p in args.arms.values()}) != 1:
        raise RecipeError("arms: expected {arm: [run dir per seed]} with the same number of seeds in every arm")
    seeds = len(next(iter(args.arms.values())))
    reports = {path: read_report(path) for paths in args.arms.values() for path in paths}
    unfinished = [p for p, rep in reports.items() if rep is None]
    if unfinished:
        raise RecipeError(f"arms: {unfinished[0]} has no report.json (the SFT run did not complete)")
    loss_tokens = [check_loss_tokens(reports, {arm: paths[i] for arm, paths in args.arms.items()})
                   for i in range(seeds)] if args.require_equal_loss_tokens else None
    clear_report(args.output_dir)
    probe = list(load_records(args.probe_dataset, required_keys=["context", "question", "answer"],
                              key="probe_dataset"))
    evals = list(load_records(args.eval_dataset, required_keys=["prompt", "completion"],
                              key="eval_dataset")) if args.eval_dataset else None
    base = [(0, probe_model(args.base_model, probe, evals))] if args.base_model else []
    results, losses = {}, {}  # per run dir
    for arm, paths in args.arms.items():
        for path in paths:
            rows = list(base)
            for step, checkpoint in all_checkpoints(path, "set save_steps in the SFT recipe"):
                print(f"probing {arm} ({run_name(path)}) step {step}", flush=True)
                rows.append((step, probe_model(checkpoint, probe, evals)))
            results[path], losses[path] = rows, train_losses(path)
    per_arm = {arm: pooled([results[p] for p in paths]) for arm, paths in args.arms.items()}
    evals_by_arm = {arm: {k: [(step, mean(results[p][i][1][k] for p in paths)) for i, (step, _) in
                              enumerate(results[paths[0]])] for k in ("eval_recall", "eval_loss") if evals}
                    for arm, paths in args.arms.items()}
    reference, arms = per_arm.get(args.reference_arm), list(per_arm)
    pairs = [name for name, (without, _) in PAIRS.items() if without in per_arm[arms[0]][0][1]]
    verdicts = {m + ("" if name == "sample" else f"_{name}"): {
        arm: boundary_verdicts(rows, reference if arm != args.reference_arm else None, m, PAIRS[name])
        for arm, rows in per_arm.items()} for name in pairs for m in METRICS}
    os.makedirs(args.output_dir, exist_ok=True)
    plot_probe(per_arm, evals_by_arm, {arm: {p: losses[p] for p in paths} for arm, paths in args.arms.items()},
               args.output_dir)
    unit = f"{seeds} seeds" if seeds > 1 else f"{len(probe)} items (one seed)"
    recall_tables = []
    for name in pairs:
        without, across = PAIRS[name]
        rows = [[step, *[f"{mean(per_arm[a][i][1][across]['recall']):.2f} / "
                         f"{mean(per_arm[a][i][1][without]['recall']):.2f}" for a in arms],
                 mean(per_arm[arms[0]][i][1]["no_fact"]["recall"])] for i, (step, _) in enumerate(per_arm[arms[0]])]
        before = "a complete previous sample (passage, question, answer)" if name == "sample" else \
            "the previous sample's passage alone"
        recall_tables.append(f"Recall after {before}: across [EOS] / newline instead of [EOS] (greedy reply exact, "
                             f"mean of seeds; last column: question alone):\n\n"
                             + markdown_table(["step", *arms, "no fact"], rows))
    sections = []
    for metric in verdicts:
        compare = args.packed_arm in per_arm and reference is not None
        rows = [[row["step"], *[verdict_cell(verdicts[metric][a]["rows"][i]["gap"]) for a in arms],
                 *([verdict_cell(verdicts[metric][args.packed_arm]["rows"][i]["vs_reference"])] if compare else [])]
                for i, row in enumerate(verdicts[metric][arms[0]]["rows"])]
        onsets = {a: verdicts[metric][a]["onset"] for a in arms}
        sections.append(
            f"### {metric}: [EOS] gap (newline - across [EOS]), mean [95% t interval over {unit}]\n\n"
            + markdown_table(["step", *[f"{a} gap" for a in arms],
                              *([f"{args.packed_arm} gap - {args.reference_arm} gap"] if compare else [])], rows)
            + "\n\nOnset (first step from which the claim holds at every later checkpoint): "
            + "; ".join(f"{a}: gap > 0 from {o['gap']}" + (f", gap > {args.reference_arm}'s from {o['vs_reference']}"
                                                           if a == args.packed_arm else "") for a, o in onsets.items()))
    def claim_line(key, where):
        packed = verdicts[key].get(args.packed_arm)
        return ("no packed arm" if not packed else
                f"{where}: packing makes [EOS] a boundary (recall gap > {args.reference_arm}'s) from step "
                f"{packed['onset']['vs_reference']}" if packed["onset"]["vs_reference"] is not None else
                f"{where}: not shown (the packed arm's recall gap is not above {args.reference_arm}'s at the last "
                "checkpoints)")

    headline = "; ".join(claim_line("recall" + ("" if n == "sample" else f"_{n}"),
                                  "after a previous sample" if n == "sample" else "after a bare passage")
                         for n in pairs)
    finals = {path: final_figures(results[path]) for path in results}
    headers = ["arm", "run", "train s", "real tokens/s", "real-token fraction", "loss tokens/step", "final train loss",
               "held-out recall", "recall across [EOS] / no [EOS]"]
    table = [[arm, run_name(p), reports[p].get("train_runtime_s"), reports[p].get("real_tokens_per_s"),
              reports[p].get("real_token_fraction"), loss_tokens[i] if loss_tokens else None, losses[p][-1][1],
              finals[p].get("eval_recall"), f"{finals[p]['recall_eos']:.2f} / {finals[p]['recall_no_eos']:.2f}"]
             for arm, paths in args.arms.items() for i, p in enumerate(paths)]
    text = (f"# Packing vs padding: EOS-boundary probe, {len(args.arms)} arms x {seeds} seed(s), {len(probe)} items, "
            f"{len(evals or [])} held-out prompts\n\n**Verdict: {headline}.**\n\n{markdown_table(headers, table)}\n\n"
            + "\n\n".join(recall_tables) + "\n\n" + "\n\n".join(sections)
            + "\n\n![probe](probe.png)\n![training](training.png)\n")
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    summary = {p: [{"step": step, **{f"{m}_{c}": mean(r[c][m]) for c in CONDITIONS if c in r for m in METRICS},
                    **{k: r[k] for k in ("eval_recall", "eval_loss") if k in r}} for step, r in rows]
               for p, rows in results.items()}
    return write_report(args.output_dir, "probe_eos", {
        "probe_items": len(probe), "eval_prompts": len(evals or []), "seeds": seeds, "verdict_unit": unit,
        "loss_tokens_per_step": loss_tokens, "headline": headline, "verdicts": verdicts,
        "runs": {run_name(p): {"arm": arm, "seed_index": i, "layout": reports[p].get("batch_layout"),
                               "train_runtime_s": reports[p].get("train_runtime_s"),
                               "real_tokens_per_s": reports[p].get("real_tokens_per_s"),
                               "real_token_fraction": reports[p].get("real_token_fraction"),
                               "final": finals[p], "probe": summary[p]}
                 for arm, paths in args.arms.items() for i, p in enumerate(paths)}}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
