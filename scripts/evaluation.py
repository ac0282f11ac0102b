"""Evaluation stage: run lm-eval task YAMLs on local task files for saved models or every checkpoint of a run.

    python scripts/evaluation.py --config recipes/tiny/evaluate.yaml
    python scripts/evaluation.py --config recipes/eval-jglue/evaluate.yaml --model_name_or_path outputs/tiny/pretrain

Task YAMLs live in `task_dir` (default llm_recipes/evaluation/lm_eval_tasks: JCommonsenseQA, JNLI, JSQuAD and MARC-ja in JGLUE's released
formats, NIILC-style QA); `task_data` maps each task to its local files ({validation: ..., train: ...} for few-shot), so
nothing is downloaded. Few-shot examples come from the train file with a recorded seed, never from the evaluated ones.
Optional prompt variance (`prompt_templates`, `choice_permutations`) reports mean ± std and min/max across variants;
multiple-choice tasks also get batch-calibrated and contextually calibrated accuracy (content-free "N/A" inputs).
Writes results_<model>.json (lm-eval's output), samples_<model>.jsonl, leaderboard.md, report.json, and
score_vs_step.png when checkpoints are evaluated.
"""

import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import RecipeError, parse, run
from llm_recipes.evaluation import TASK_DIR
from llm_recipes.evaluation.report import (
    batch_calibrated_acc,
    contextually_calibrated_acc,
    plot_score_vs_step,
    spread,
    summarize_models,
)
from llm_recipes.evaluation.tasks import resolve_tasks
from llm_recipes.reporting.report import clear_report, write_report
from llm_recipes.reporting.stats import binomial_p_above, proportion_interval
from llm_recipes.training.common import require_model_dir


@dataclass
class EvaluateArguments:
    model_name_or_path: list[str] = field(metadata={"help": "model directories, or training output dirs (see "
                                                           "checkpoints)"})
    tasks: list[str] = field(metadata={"help": "task names (task YAMLs in task_dir)"})
    output_dir: str = field(metadata={"help": "where results go"})
    task_data: dict | str | None = field(default=None, metadata={"help": "task -> file, or task -> {split: file}"})
    task_dir: str = TASK_DIR
    checkpoints: bool = field(default=False, metadata={"help": "evaluate every checkpoint-* under each directory"})
    num_fewshot: int = 0
    prompt_templates: dict | None = field(default=None, metadata={"help": "task -> extra doc_to_text templates"})
    choice_permutations: int = field(default=0, metadata={"help": "shuffled-choice copies of multiple-choice data"})
    contextual_calibration: bool = field(default=True, metadata={"help": "also score content-free ('N/A') copies "
                                                                         "of multiple-choice data"})
    seed: int = 1234
    batch_size: int = 16
    limit: int | None = None
    device: str | None = None
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})


ARGUMENTS = (EvaluateArguments,)  # the dataclasses a recipe file for this stage fills


def model_list(args):
    """(label, path, step, tokenizer dir) for each model to evaluate; with `checkpoints`, every checkpoint-N plus the final model."""
    models = []
    for path in args.model_name_or_path:
        name = os.path.basename(os.path.normpath(path))
        if args.checkpoints:
            ckpts = sorted((int(d.split("-")[-1]), os.path.join(path, d)) for d in os.listdir(path)
                           if d.startswith("checkpoint-") and d.split("-")[-1].isdigit())
            if not ckpts:
                raise RecipeError(f"model_name_or_path: {path} has no checkpoint-* directories")
            models += [(f"{name}@{step}", ckpt, step) for step, ckpt in ckpts]
        else:
            models.append((name, path, None))
    resolved = []
    for name, path, step in models:
        require_model_dir(path, allow_pickle=args.allow_pickle_weights)
        tokenizer = path  # a checkpoint without its own tokenizer uses its run's
        if step is not None and not os.path.isfile(os.path.join(path, "tokenizer_config.json")):
            tokenizer = os.path.dirname(path)
        if not os.path.isfile(os.path.join(tokenizer, "tokenizer_config.json")):
            raise RecipeError(f"model_name_or_path: {path} has no tokenizer (tokenizer_config.json)")
        resolved.append((name, path, step, tokenizer))
    return resolved


def main(args: EvaluateArguments):
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    start = time.time()
    task_data = json.loads(args.task_data) if isinstance(args.task_data, str) else (args.task_data or {})
    models = model_list(args)
    clear_report(args.output_dir)
    variants, counts, chance, content_free = resolve_tasks(
        args.task_dir, args.tasks, task_data, os.path.join(args.output_dir, "tasks"), args.prompt_templates,
        args.choice_permutations, args.seed, args.num_fewshot, args.contextual_calibration)
    task_manager = TaskManager(include_path=os.path.join(args.output_dir, "tasks"), include_defaults=False)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    all_variants = [v for task in args.tasks for v in variants[task]] + list(content_free.values())
    scores = {}
    for name, path, step, tokenizer in models:
        out = lm_eval.simple_evaluate(
            model="hf", model_args={"pretrained": path, "tokenizer": tokenizer, "dtype": "float32", "device": device},
            tasks=all_variants, task_manager=task_manager, num_fewshot=args.num_fewshot, batch_size=args.batch_size,
            limit=args.limit, random_seed=args.seed, numpy_random_seed=args.seed, torch_random_seed=args.seed,
            fewshot_random_seed=args.seed, log_samples=True)
        with open(os.path.join(args.output_dir, f"results_{name}.json"), "w", encoding="utf-8") as f:
            json.dump({k: out[k] for k in ("results", "configs", "n-samples") if k in out}, f, ensure_ascii=False,
                      indent=2, default=str)
        with open(os.path.join(args.output_dir, f"samples_{name}.jsonl"), "w", encoding="utf-8") as f:
            for variant, samples in out["samples"].items():
                for sample in samples:
                    context = sample["arguments"][0][0] if sample.get("arguments") else None
                    f.write(json.dumps({"task": variant, "doc_id": sample["doc_id"], "target": sample["target"],
                                        "context": context,
                                        "scores": [r[0] if isinstance(r, (list, tuple)) else r
                                                   for r in sample["filtered_resps"]]},
                                       ensure_ascii=False, default=str) + "\n")
        scores[name] = {"step": step}
        for task in args.tasks:
            results = {v: out["results"][v] for v in variants[task]}
            metric = "acc" if "acc,none" in results[task] else "exact_match"
            score = {"metric": metric, "score": results[task][f"{metric},none"], "n": out["n-samples"][task]["effective"],
                     "n_in_file": counts[task], "chance": chance[task], **spread(results, metric)}
            if "char_f1,none" in results[task]:
                score["char_f1"] = results[task]["char_f1,none"]
            if metric == "acc":
                score["batch_calibrated_acc"] = batch_calibrated_acc(out["samples"][task])
                if task in content_free:
                    score["contextual_calibrated_acc"] = contextually_calibrated_acc(
                        out["samples"][task], out["samples"][content_free[task]])
            if chance[task] is not None:  # "above chance" means significantly so: one-sided binomial test at 5 %
                score["p_value"] = binomial_p_above(round(score["score"] * score["n"]), score["n"], chance[task])
                score["above_chance"] = score["p_value"] < 0.05
            if metric == "acc":
                score["interval_95"] = proportion_interval(round(score["score"] * score["n"]), score["n"])
            scores[name][task] = score
    best = {task: max((m for m in scores if task in scores[m]), key=lambda m: scores[m][task]["score"])
            for task in args.tasks} if len(scores) > 1 else {}
    table = summarize_models(scores, args.tasks) + "".join(
        f"\nbest on {task}: {model} ({scores[model][task]['score']:.4g})" for task, model in best.items())
    with open(os.path.join(args.output_dir, "leaderboard.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    if args.checkpoints:
        plot_score_vs_step(os.path.join(args.output_dir, "score_vs_step.png"), scores, args.tasks)
    print(table)
    return write_report(args.output_dir, "evaluate", {"scores": scores, "best": best, "num_fewshot": args.num_fewshot,
                                                      "seed": args.seed}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
