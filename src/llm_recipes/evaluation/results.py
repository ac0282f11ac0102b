"""Evaluation results: spread across prompt variants, batch and contextual calibration, the results and leaderboard
tables, score-vs-step plots, each run's results / samples files and what the run cost."""

import json
import os
import statistics

from llm_recipes.reporting.report import markdown_table


def spread(results, metric):
    """Mean ± std and min/max of `metric` across a task's prompt / choice-order variants."""
    values = [r[f"{metric},none"] for r in results.values()]
    if len(values) < 2:
        return {}
    return {"variants": len(values), "mean": statistics.mean(values), "std": statistics.stdev(values),
            "min": min(values), "max": max(values)}


def batch_calibrated_acc(samples):
    """Batch calibration (Zhou et al., 2024): subtract from each choice position's log-likelihood its mean over the
    evaluated batch, then take the argmax. Removes a constant preference for a position or label."""
    rows = [([float(r[0]) for r in s["filtered_resps"]], int(s["target"])) for s in samples]
    by_width = {}
    for scores, target in rows:
        by_width.setdefault(len(scores), []).append((scores, target))
    correct = 0
    for width, group in by_width.items():
        means = [sum(scores[k] for scores, _ in group) / len(group) for k in range(width)]
        for scores, target in group:
            calibrated = [scores[k] - means[k] for k in range(width)]
            correct += max(range(width), key=calibrated.__getitem__) == target
    return correct / len(rows) if rows else None


def contextually_calibrated_acc(samples, content_free_samples):
    """Contextual calibration (Zhao et al., 2021): subtract from each choice's log-likelihood the one the model gives
    the same choice with the content replaced by "N/A", then take the argmax."""
    free = {s["doc_id"]: [float(r[0]) for r in s["filtered_resps"]] for s in content_free_samples}
    correct = 0
    for s in samples:
        scores = [float(r[0]) - b for r, b in zip(s["filtered_resps"], free[s["doc_id"]])]
        correct += max(range(len(scores)), key=scores.__getitem__) == int(s["target"])
    return correct / len(samples) if samples else None


def summarize_models(scores, tasks):
    rows = []
    for model, by_task in scores.items():
        for task in tasks:
            s = by_task[task]
            variance = f"{s['mean']:.3f} ± {s['std']:.3f} [{s['min']:.3f}, {s['max']:.3f}] ({s['variants']})" \
                if "variants" in s else "-"
            verdict = "-" if s.get("chance") is None else \
                f"{'yes' if s['above_chance'] else 'no'} (p={s['p_value']:.2g})"
            rows.append([model, task, s["n"], s["metric"], round(s["score"], 4),
                         round(s["batch_calibrated_acc"], 4) if s.get("batch_calibrated_acc") is not None else "-",
                         round(s["contextual_calibrated_acc"], 4) if s.get("contextual_calibrated_acc") is not None
                         else "-",
                         round(s["char_f1"], 4) if "char_f1" in s else "-",
                         "-" if s.get("chance") is None else round(s["chance"], 4), verdict, variance])
    return markdown_table(["model", "task", "examples", "metric", "score", "batch-calibrated",
                           "contextual-calibrated", "char F1", "chance",
                           "above chance (p<0.05)", "prompt variants: mean ± std [min, max]"], rows)


CATEGORY_ORDER = ("NLI", "QA", "RC", "MC", "SA", "HE", "MR", "SUM", "MT", "CG")  # llm-jp-eval's order, SA added


def category_table(scores, tasks):
    """One leaderboard table: a row per task grouped by category (llm-jp-eval's names), a column per model and chat
    setting ('+chat' = the model's chat template applied)."""
    labels = list(scores)
    first = scores[labels[0]]
    ranks = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    order = sorted(tasks, key=lambda t: (ranks.get(first[t]["category"].split()[0], len(ranks)),
                                         first[t]["category"], tasks.index(t)))
    rows = []
    for task in order:
        s = first[task]
        rows.append([s["category"], task, s["metric"], s["n"], "-" if s.get("chance") is None else round(s["chance"], 3),
                     *[round(scores[label][task]["score"], 4) for label in labels]])
    return markdown_table(["category", "task", "metric", "examples", "chance", *labels], rows)


def cost_table(costs):
    rows = [[label, c["examples"], c["tokens"], c["wall_s"], round(c["examples_per_s"], 2), round(c["tokens_per_s"], 1)]
            for label, c in costs.items()]
    return markdown_table(["run", "examples", "tokens", "wall s", "examples/s", "tokens/s"], rows)


def plot_score_vs_step(path, scores, tasks):
    from llm_recipes.reporting.plots import subplots

    fig, ax = subplots(figsize=(6, 4))
    runs = {}
    for model, by_task in scores.items():
        if by_task.get("step") is not None:
            runs.setdefault(model.split("@")[0], []).append((by_task["step"], by_task))
    for run, points in runs.items():
        points.sort(key=lambda p: p[0])
        for task in tasks:
            ax.plot([p[0] for p in points], [p[1][task]["score"] for p in points], marker="o", label=f"{run} {task}")
            chance = points[0][1][task].get("chance")
            if chance is not None:
                ax.axhline(chance, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("score")
    ax.set_title("score vs step (dotted: chance)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_run_files(output_dir, label, out, provenance, cost):
    """results_<label>.json (lm-eval's results, configs and counts, with provenance and cost) and
    samples_<label>.jsonl (one line per scored example: task, doc id, target, context, per-choice scores)."""
    with open(os.path.join(output_dir, f"results_{label}.json"), "w", encoding="utf-8") as f:
        json.dump({**{k: out[k] for k in ("results", "configs", "n-samples") if k in out},
                   "provenance": provenance, "cost": cost}, f, ensure_ascii=False, indent=2, default=str)
    with open(os.path.join(output_dir, f"samples_{label}.jsonl"), "w", encoding="utf-8") as f:
        for variant, samples in out["samples"].items():
            for sample in samples:
                context = sample["arguments"][0][0] if sample.get("arguments") else None
                f.write(json.dumps({"task": variant, "doc_id": sample["doc_id"], "target": sample["target"],
                                    "context": context,
                                    "scores": [r[0] if isinstance(r, (list, tuple)) else r
                                               for r in sample["filtered_resps"]]},
                                   ensure_ascii=False, default=str) + "\n")


def run_cost(out, tokenizer, wall_s):
    """Examples and tokens the model processed (context + continuation per scored choice; prompt + generated text per
    generation), per second of the lm-eval run."""
    examples = tokens = 0
    for samples in out["samples"].values():
        examples += len(samples)
        for sample in samples:
            for argument, response in zip(sample["arguments"], sample["resps"]):
                if len(argument) == 1:  # (text,): a rolling log-likelihood over the whole text
                    tokens += len(tokenizer(argument[0], add_special_tokens=False)["input_ids"])
                elif isinstance(argument[1], str):  # (context, continuation)
                    tokens += len(tokenizer(argument[0] + argument[1], add_special_tokens=False)["input_ids"])
                else:  # (context, generation kwargs) -> generated text
                    generated = response[0] if isinstance(response, (list, tuple)) else response
                    tokens += len(tokenizer(argument[0] + str(generated), add_special_tokens=False)["input_ids"])
    return {"examples": examples, "tokens": tokens, "wall_s": round(wall_s, 2),
            "examples_per_s": examples / wall_s, "tokens_per_s": tokens / wall_s}


def prompt_of(config):
    keys = ("description", "doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter", "fewshot_delimiter",
            "num_fewshot", "fewshot_split", "generation_kwargs", "output_type")
    return {k: config.get(k) for k in keys if config.get(k) is not None}
