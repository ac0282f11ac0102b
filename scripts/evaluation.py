"""Evaluation stage: run lm-eval task YAMLs on local task files for saved models or every checkpoint of a run.

    python scripts/evaluation.py --config recipes/tiny/evaluate.yaml
    python scripts/evaluation.py --config recipes/eval-ja-suite/evaluate.yaml --model_name_or_path outputs/tiny/sft

Task YAMLs live in `task_dir` (default llm_recipes/evaluation/lm_eval_tasks): simple-prompt tasks for base models
(`*_simple`: JCommonsenseQA, JNLI, JSQuAD, MARC-ja, NIILC-style QA), the Japanese LLM leaderboard's tasks
(`ja_leaderboard_*_local`, group `ja_leaderboard_local`: lm-eval's own definitions included, only the data source
replaced) and llm-jp-eval's categories (`*_llmjp`, group `llm_jp_eval_local`). `task_data` maps each task to its local
files in the dataset's released format ({split: file} for few-shot), so nothing is downloaded; a wrong format is an
error naming file and line. Few-shot examples come from the train file with a recorded seed, never from the evaluated
ones. `apply_chat_template` (false / true / both / auto = both for SFT/DPO/KTO models) runs lm-eval with the model's
chat template (few-shot examples as turns with `fewshot_as_multiturn`). Optional prompt variance (`prompt_templates`,
`choice_permutations`) reports mean ± std and min/max across variants; multiple-choice tasks also get batch-calibrated
and contextually calibrated accuracy (content-free "N/A" inputs). Every score records its provenance (sha256 of each
data file, lm-eval version, prompt template, few-shot count and seed, chat template) and each run its cost
(examples/s, tokens/s). Writes results_<model>.json (lm-eval's output), samples_<model>.jsonl, leaderboard.md (a row
per model and task), categories.md (one table grouped by category, a column per model and chat setting, and each
run's cost), report.json, and score_vs_step.png when checkpoints are evaluated.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run, with_seeds
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation import TASK_DIR
from llm_recipes.evaluation.measures import TEXT_TASKS, bits_per_char, compute_dtype, generation_speed
from llm_recipes.evaluation.results import (
    batch_calibrated_acc,
    category_table,
    contextually_calibrated_acc,
    cost_table,
    plot_score_vs_step,
    prompt_of,
    run_cost,
    spread,
    summarize_models,
    write_run_files,
)
from llm_recipes.evaluation.tasks import category, expand_tasks, resolve_tasks
from llm_recipes.reporting.report import clear_report, read_report, write_report
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
    num_fewshot: int | None = field(default=None, metadata={"help": "few-shot count for our tasks (None: each task's "
                                                                    "own); leaderboard tasks keep lm-eval's"})
    apply_chat_template: str = field(default="false", metadata={"help": "false, true, both (off and on) or auto (both "
                                                                       "for SFT/DPO/KTO models, off for others)"})
    fewshot_as_multiturn: bool = field(default=True, metadata={"help": "with the chat template, few-shot examples "
                                                                       "as conversation turns"})
    prompt_templates: dict | None = field(default=None, metadata={"help": "task -> extra doc_to_text templates"})
    choice_permutations: int = field(default=0, metadata={"help": "shuffled-choice copies of multiple-choice data"})
    contextual_calibration: bool = field(default=False, metadata={"help": "also score content-free ('N/A') copies "
                                                                          "of multiple-choice data (doubles the work)"})
    backend: str = field(default="hf-shared", metadata={"help": "hf-shared (one pass per shared context, "
                                                                "llm_recipes.evaluation.shared_context) | hf (stock)"})
    dtype: str = field(default="auto", metadata={"help": "auto (bfloat16 where the hardware has it) | float32 | ..."})
    max_length: int | None = field(default=None, metadata={"help": "model context for lm-eval (default: the model's)"})
    generation_speed: dict | None = field(default=None, metadata={
        "help": "{dataset_name: JSONL of {text} prompts, max_new_tokens, reference_text}: characters generated per "
                "second (measures.generation_speed)"})
    seeds: list[int] | None = field(default=None, metadata={"help": "fill {seed} in model paths (one per seed)"})

    def __post_init__(self):
        self.model_name_or_path = with_seeds(self.model_name_or_path, self.seeds) if self.seeds else \
            self.model_name_or_path
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
    names = [name for name, _, _ in models]
    models = [(f"{os.path.basename(os.path.dirname(os.path.normpath(p)))}-{n}" if names.count(n) > 1 else n, p, s)
              for n, p, s in models]  # sft/merged and dpo/merged: sft-merged, dpo-merged
    resolved = []
    for name, path, step in models:
        path = require_model_dir(path, allow_pickle=args.allow_pickle_weights)  # a .gguf becomes a directory
        tokenizer = path  # a checkpoint without its own tokenizer uses its run's
        if step is not None and not os.path.isfile(os.path.join(path, "tokenizer_config.json")):
            tokenizer = os.path.dirname(path)
        if not os.path.isfile(os.path.join(tokenizer, "tokenizer_config.json")):
            raise RecipeError(f"model_name_or_path: {path} has no tokenizer (tokenizer_config.json)")
        resolved.append((name, path, step, tokenizer))
    return resolved


INSTRUCTION_TUNED = ("sft", "dpo", "kto")
PRIMARY_METRICS = ("acc", "exact_match", "pass@1", "rouge2", "bleu", "bits_per_byte")


def chat_settings(mode, path):
    """Chat template off / on for one model: false, true, both, or auto (both for a model an SFT/DPO/KTO stage
    saved, off otherwise)."""
    mode = str(mode).lower()
    if mode not in ("false", "true", "both", "auto"):
        raise RecipeError(f"apply_chat_template: {mode!r} is not one of false, true, both, auto")
    if mode == "auto":
        report = read_report(path) or read_report(os.path.dirname(os.path.normpath(path))) or {}
        mode = "both" if report.get("stage") in INSTRUCTION_TUNED else "false"
    return {"false": [False], "true": [True], "both": [False, True]}[mode]


def main(args: EvaluateArguments):
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    import llm_recipes.evaluation.shared_context  # noqa: F401  (registers lm-eval model "hf-shared")

    start = time.time()
    task_data = json.loads(args.task_data) if isinstance(args.task_data, str) else (args.task_data or {})
    models = model_list(args)
    runs = [(name, path, step, tokenizer, chat) for name, path, step, tokenizer in models
            for chat in chat_settings(args.apply_chat_template, path)]
    clear_report(args.output_dir)
    tasks = expand_tasks(args.task_dir, args.tasks)
    variants, counts, chance, content_free, provenance = resolve_tasks(
        args.task_dir, tasks, task_data, os.path.join(args.output_dir, "tasks"), args.prompt_templates,
        args.choice_permutations, args.seed, args.num_fewshot, args.contextual_calibration)
    task_manager = TaskManager(include_path=os.path.join(args.output_dir, "tasks"), include_defaults=False)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = compute_dtype(device, args.dtype)
    model_options = {"dtype": dtype, "device": device, "softmax_dtype": "float32",
                     **({"max_length": args.max_length} if args.max_length else {})}
    all_variants = [v for task in tasks for v in variants[task]] + list(content_free.values())
    scores, costs = {}, {}
    for name, path, step, tokenizer, chat in runs:
        label = f"{name}+chat" if chat else name
        print(f"evaluating {label} ({path}) on {len(all_variants)} task variant(s), chat template "
              f"{'on' if chat else 'off'}")
        tok = AutoTokenizer.from_pretrained(tokenizer)
        if chat and not tok.chat_template:
            raise RecipeError(f"apply_chat_template: {tokenizer} has no chat template")
        run_start = time.time()
        out = lm_eval.simple_evaluate(
            model=args.backend, model_args={"pretrained": path, "tokenizer": tokenizer, **model_options},
            tasks=all_variants, task_manager=task_manager, num_fewshot=None, batch_size=args.batch_size,
            limit=args.limit, random_seed=args.seed, numpy_random_seed=args.seed, torch_random_seed=args.seed,
            fewshot_random_seed=args.seed, log_samples=True, apply_chat_template=chat,
            fewshot_as_multiturn=bool(chat and args.fewshot_as_multiturn))
        costs[label] = {**run_cost(out, tok, time.time() - run_start), "backend": args.backend, "dtype": dtype}
        if args.generation_speed and not chat:
            speed = args.generation_speed
            costs[label]["generation"] = generation_speed(path, speed["dataset_name"], speed.get("max_new_tokens", 64),
                                                          dtype, device, reference_text=speed.get("reference_text"))
        write_run_files(args.output_dir, label, out, provenance, costs[label])
        scores[label] = {"step": step, "chat_template": chat}
        chat_hash = hashlib.sha256(tok.chat_template.encode()).hexdigest() if chat else None
        for task in tasks:
            results = {v: out["results"][v] for v in variants[task]}
            config = out["configs"][task]
            values = {k.split(",")[0]: v for k, v in results[task].items()
                      if "," in k and "_stderr" not in k and isinstance(v, (int, float))}
            metric = next((m for m in PRIMARY_METRICS if m in values), next(iter(values)))
            metric_key = next(k for k in results[task] if k.split(",")[0] == metric)
            score = {"metric": metric, "score": values[metric], "metrics": values, "category": category(task),
                     "n": out["n-samples"][task]["effective"], "n_in_file": counts[task], "chance": chance[task],
                     **spread({v: {f"{metric},none": r.get(metric_key)} for v, r in results.items()}, metric)}
            if "char_f1" in values:
                score["char_f1"] = values["char_f1"]
            if task in TEXT_TASKS:  # bits per byte -> bits per character (the score; lower is better)
                data = task_data[task]
                score.update(metric="bits_per_char", score=bits_per_char(values["bits_per_byte"], data.get(
                    "validation") if isinstance(data, dict) else data, args.limit), higher_is_better=False)
            for key in ("chars_per_second", "ja_text_chars_per_second"):
                if key in costs[label].get("generation", {}):
                    scores[label][f"generation_{key}"] = costs[label]["generation"][key]
            if config.get("output_type") == "multiple_choice":
                score["batch_calibrated_acc"] = batch_calibrated_acc(out["samples"][task])
                if task in content_free:
                    score["contextual_calibrated_acc"] = contextually_calibrated_acc(
                        out["samples"][task], out["samples"][content_free[task]])
            if chance[task] is not None:  # "above chance" means significantly so: one-sided binomial test at 5 %
                score["p_value"] = binomial_p_above(round(score["score"] * score["n"]), score["n"], chance[task])
                score["above_chance"] = score["p_value"] < 0.05
            if metric == "acc":
                score["interval_95"] = proportion_interval(round(score["score"] * score["n"]), score["n"])
            score["provenance"] = {
                "data": provenance[task], "lm_eval_version": lm_eval.__version__, "prompt": prompt_of(config),
                "num_fewshot": config.get("num_fewshot"), "fewshot_seed": args.seed, "chat_template": chat,
                "chat_template_sha256": chat_hash, "fewshot_as_multiturn": bool(chat and args.fewshot_as_multiturn),
                "model": os.path.abspath(path)}
            scores[label][task] = score
    best = {task: (max if scores[m0][task].get("higher_is_better", True) else min)(
        scores, key=lambda m: scores[m][task]["score"]) for m0 in list(scores)[:1] for task in tasks
            if len({scores[m][task]["score"] for m in scores}) > 1}  # no "best" among equal scores
    table = summarize_models(scores, tasks) + "".join(
        f"\nbest on {task}: {model} ({scores[model][task]['score']:.4g})" for task, model in best.items())
    with open(os.path.join(args.output_dir, "leaderboard.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    grouped = category_table(scores, tasks) + "\n\n" + cost_table(costs)
    with open(os.path.join(args.output_dir, "categories.md"), "w", encoding="utf-8") as f:
        f.write(grouped + "\n")
    table += "\n\n" + grouped
    if args.checkpoints:
        plot_score_vs_step(os.path.join(args.output_dir, "score_vs_step.png"), scores, tasks)
    print(table)
    return write_report(args.output_dir, "evaluate", {
        "scores": scores, "best": best, "cost": costs, "tasks": tasks, "num_fewshot": args.num_fewshot,
        "seed": args.seed, "lm_eval_version": lm_eval.__version__}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
