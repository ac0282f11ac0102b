"""EOS-boundary probe and report for SFT runs that differ in batch layout (recipes/packing-vs-padding).

    python scripts/probe_eos.py --config recipes/packing-vs-padding/probe.yaml

For every checkpoint of every run (and the shared base model as step 0) it measures:
- the probe: a sample states a fact, then [EOS], then the next sample asks about it. Does the model still answer from
  across the boundary? Probability of the right answer (normalised over the same-kind candidates) and greedy answer,
  with the [EOS] and with the same text joined by a newline instead; plus the question alone (no fact) as the floor.
  The Tohoku/NTT poster found that packing without a mask change teaches the model to treat [EOS] as a boundary;
- the eval score: completion loss and in-context answer accuracy on held-out reading-comprehension prompts.
Then it writes one table per run (wall time, tokens/s, real-token fraction, loss tokens per step, losses, probe) and
PNGs: probe.png (cross-boundary probability vs step) and training.png (train loss, eval loss, eval accuracy vs step).
With `require_equal_loss_tokens` it fails unless every run trained on the same loss tokens at every optimizer step.
"""

import glob
import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import RecipeError, parse, run
from llm_recipes.data import load_records
from llm_recipes.evaluation.eos_probe import choice_scores, completion_loss, greedy_answers
from llm_recipes.reporting.report import clear_report, markdown_table, read_report, write_report
from llm_recipes.training.common import require_model_dir
from llm_recipes.training.packing import read_steps


@dataclass
class ProbeArguments:
    output_dir: str = field(metadata={"help": "where report.json, report.md and the PNGs go"})
    runs: list[dict] = field(metadata={"help": "[{name, path}]: SFT output dirs; each checkpoint-* is probed"})
    probe_dataset: str = field(metadata={"help": "JSONL: context, question, answer, candidates"})
    eval_dataset: str | None = field(default=None, metadata={
        "help": "JSONL: prompt, completion, answer, candidates (held-out, in-context answers)"})
    base_model: str | None = field(default=None, metadata={"help": "the runs' starting model, probed as step 0"})
    require_equal_loss_tokens: bool = field(default=True, metadata={
        "help": "fail unless all runs report the same loss tokens at every optimizer step (batch_layout runs)"})
    max_new_tokens: int = 8


ARGUMENTS = (ProbeArguments,)  # the dataclasses a recipe file for this stage fills


def checkpoints(path):
    found = sorted(glob.glob(os.path.join(path, "checkpoint-*")), key=lambda p: int(p.rsplit("-", 1)[1]))
    if not found:
        raise RecipeError(f"runs: {path} has no checkpoint-* directories (set save_steps in the SFT recipe)")
    return [(int(p.rsplit("-", 1)[1]), p) for p in found]


def probe_model(path, args, probe, evals):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require_model_dir(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    eos = tokenizer.eos_token
    prefixes = {"eos": lambda r: f"{r['context']}{eos}{r['question']}",
                "no_eos": lambda r: f"{r['context']}\n{r['question']}", "no_fact": lambda r: r["question"]}
    row = {}
    for name, prefix in prefixes.items():
        scores = choice_scores(model, tokenizer, probe, prefix)
        row[f"p_{name}"] = sum(s["p_answer"] for s in scores) / len(scores)
        if name != "no_fact":
            replies = greedy_answers(model, tokenizer, [prefix(r) for r in probe], args.max_new_tokens)
            row[f"greedy_{name}"] = sum(reply.startswith(r["answer"]) for reply, r in zip(replies, probe)) / len(probe)
    if evals:
        row["eval_loss"] = completion_loss(model, tokenizer, evals)
        row["eval_accuracy"] = sum(s["correct"] for s in choice_scores(model, tokenizer, evals,
                                                                       lambda r: r["prompt"])) / len(evals)
    return row


def train_losses(path):
    """(step, loss) pairs from the last checkpoint's trainer state."""
    with open(os.path.join(checkpoints(path)[-1][1], "trainer_state.json"), encoding="utf-8") as f:
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

    fig, ax = subplots(figsize=(6.5, 4))
    for i, (name, rows) in enumerate(results.items()):
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["p_eos"] for r in rows], "-o", color=f"C{i}", label=f"{name}: fact before [EOS]")
        ax.plot(steps, [r["p_no_eos"] for r in rows], "--", color=f"C{i}", label=f"{name}: same text, no [EOS]")
    rows = next(iter(results.values()))
    ax.plot([r["step"] for r in rows], [r["p_no_fact"] for r in rows], ":", color="gray", label="question alone")
    ax.set(xlabel="SFT step", ylabel="p(right answer) among candidates", title="EOS-boundary probe", ylim=(0, 1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "probe.png"), dpi=120)
    fig, axes = subplots(1, 3, figsize=(13, 3.8))
    for i, (name, rows) in enumerate(results.items()):
        axes[0].plot(*zip(*losses[name]), color=f"C{i}", label=name)
        for ax, key in zip(axes[1:], ("eval_loss", "eval_accuracy")):
            ax.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r], "-o", color=f"C{i}",
                    label=name)
    for ax, title in zip(axes, ("train loss", "held-out completion loss", "held-out in-context accuracy")):
        ax.set(xlabel="step", title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "training.png"), dpi=120)


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
    probe = list(load_records(args.probe_dataset, required_keys=["context", "question", "answer", "candidates"],
                              key="probe_dataset"))
    evals = list(load_records(args.eval_dataset, required_keys=["prompt", "completion", "answer", "candidates"],
                              key="eval_dataset")) if args.eval_dataset else None
    base = {"step": 0, **probe_model(args.base_model, args, probe, evals)} if args.base_model else None
    results, losses = {}, {}
    for run_ in args.runs:
        rows = [base] if base else []
        for step, path in checkpoints(run_["path"]):
            print(f"probing {run_['name']} step {step}", flush=True)
            rows.append({"step": step, **probe_model(path, args, probe, evals)})
        results[run_["name"]], losses[run_["name"]] = rows, train_losses(run_["path"])
    os.makedirs(args.output_dir, exist_ok=True)
    plot(results, losses, args.output_dir)
    headers = ["run", "train s", "real tokens/s", "tokens/s", "real-token fraction", "loss tokens/step", "train loss",
               "eval loss", "eval acc", "p(ans) [EOS]", "p(ans) no [EOS]", "p(ans) no fact"]
    table = [[name, rep.get("train_runtime_s"), rep.get("real_tokens_per_s"), rep.get("tokens_per_s"),
              rep.get("real_token_fraction"), loss_tokens, losses[name][-1][1], results[name][-1].get("eval_loss"),
              results[name][-1].get("eval_accuracy"), results[name][-1]["p_eos"], results[name][-1]["p_no_eos"],
              results[name][-1]["p_no_fact"]] for name, rep in reports.items()]
    steps = [r["step"] for r in next(iter(results.values()))]
    greedy = [[s, *[f"{results[n][i]['greedy_eos']:.0%} / {results[n][i]['greedy_no_eos']:.0%}" for n in results]]
              for i, s in enumerate(steps)]
    text = (f"# Packing vs padding: {len(probe)} probe items, {len(evals or [])} held-out prompts\n\n"
            f"{markdown_table(headers, table)}\n\nGreedy answer correct across the boundary (with [EOS] / without):\n\n"
            f"{markdown_table(['step', *results], greedy)}\n\n![probe](probe.png)\n![training](training.png)\n")
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return write_report(args.output_dir, "probe_eos", {
        "probe_items": len(probe), "eval_prompts": len(evals or []), "loss_tokens_per_step": loss_tokens,
        "runs": {n: {"layout": reports[n].get("batch_layout"), "train_runtime_s": reports[n].get("train_runtime_s"),
                     "real_tokens_per_s": reports[n].get("real_tokens_per_s"),
                     "tokens_per_s": reports[n].get("tokens_per_s"),
                     "real_token_fraction": reports[n].get("real_token_fraction"), "probe": results[n]}
                 for n in results}}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
