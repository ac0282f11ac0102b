"""Self-Instruct (Wang et al. 2023, arXiv 2212.10560): grow instruction data from a few seed tasks with a language model.

    python scripts/self_instruct.py --config recipes/self-instruct/self_instruct.yaml
    python scripts/self_instruct.py --config recipes/self-instruct-ja/self_instruct.yaml --dry_run true

Each round:
1. task generation: `prompts_per_round` prompts, each listing `seed_per_prompt` human seed tasks and
   `machine_per_prompt` tasks generated so far ("タスク1: ..."), which the model continues with new tasks;
2. filtering: too short / too long (counted in characters, an ASCII word counting once), blocked keywords (tasks a
   text model cannot do: images, files, ...), not text (or bytes cut mid-character), repeated, and ROUGE-L >= `rouge_threshold` against every task in
   the pool (ROUGE-L over characters: rouge_score's default tokenizer drops Japanese);
3. classification check: is the task a classification task with a finite set of labels (few-shot, from the seeds)?
4. instances: output-first for classification tasks (class label, then an input), input-first for the others;
   instances without an output, repeated, or holding bytes cut mid-character are dropped; a task without any
   instance is dropped.
Generation is llm_recipes.generation.generate with a local model, or an OpenAI-compatible endpoint only when the recipe
names one (`api_base`, `api_model`; key from `api_key_env`). Writes output_dir/sft.jsonl (messages format, with
`provenance` per record), tasks.jsonl (every generated task with its fate), report.json / report.md.
"""

import json
import os
import random
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.self_instruct import (
    BLOCKED,
    CLASSIFICATION_PROMPT,
    INPUT_FIRST_PROMPT,
    OUTPUT_FIRST_PROMPT,
    TASK_PROMPT,
    classification_prompt,
    filter_task,
    instance_prompt,
    parse_instances,
    parse_tasks,
    read_seed_tasks,
    render_formats,
    rouge_scorer,
    task_prompt,
)


@dataclass
class SelfInstructArguments:
    seed_tasks: str = field(metadata={"help": "JSONL: {id, instruction, instances: [{input, output}], is_classification}"})
    output_dir: str
    model_name_or_path: str | None = field(default=None, metadata={"help": "local model directory (base model)"})
    api_base: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint (opt-in)"})
    api_model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    rounds: int = 2
    prompts_per_round: int = 8
    seed_per_prompt: int = 6
    machine_per_prompt: int = 2
    max_new_tokens: int = 96
    temperature: float = 0.7
    top_p: float = 0.95
    rouge_threshold: float = field(default=0.7, metadata={"help": "drop a task with ROUGE-L >= this to any pooled task"})
    min_length: int = field(default=4, metadata={"help": "characters (an ASCII word counts once)"})
    max_length: int = 150
    blocked_keywords: list[str] = field(default_factory=lambda: list(BLOCKED))
    max_instances: int = 3
    task_prompt: str = TASK_PROMPT
    classification_prompt: str = CLASSIFICATION_PROMPT
    input_first_prompt: str = INPUT_FIRST_PROMPT
    output_first_prompt: str = OUTPUT_FIRST_PROMPT
    render_formats: int = field(default=0, metadata={
        "help": "write this many texts in the prompt formats, made from the seed tasks, to output_dir/format_text.jsonl "
                "and stop (pretraining text for a tiny base model that never saw such prompts)"})
    seed: int = 42
    dry_run: bool = field(default=False, metadata={"help": "print the plan and a rendered prompt; load no model"})


ARGUMENTS = (SelfInstructArguments,)


def make_generator(args):
    """prompts -> generated continuations: a local model (llm_recipes.generation.generate) or the opt-in endpoint."""
    if args.api_base:
        from llm_recipes.evaluation.judging import api_judge

        if not args.api_model:
            raise RecipeError("api_model: required with api_base")
        complete = api_judge(args.api_base, args.api_model, args.api_key_env, temperature=args.temperature)
        return lambda prompts: [complete(p) for p in prompts]
    if not args.model_name_or_path:
        raise RecipeError("model_name_or_path: name a local model (or an endpoint with api_base)")
    from llm_recipes.generation import generate, load
    from llm_recipes.training.common import require_model_dir

    model, tokenizer = load(require_model_dir(args.model_name_or_path, "model_name_or_path"))

    def run_model(prompts):
        outputs = generate(model, tokenizer, prompts, args.max_new_tokens, do_sample=args.temperature > 0,
                           temperature=args.temperature or 1.0, top_p=args.top_p, chat=False, batch_size=8)
        return [o[0].text for o in outputs]

    return run_model


def main(args: SelfInstructArguments):
    start = time.time()
    seeds = read_seed_tasks(args.seed_tasks)
    rng = random.Random(args.seed)
    if args.dry_run:
        generator = f"endpoint {args.api_base} ({args.api_model})" if args.api_base else args.model_name_or_path
        print(markdown_table(["key", "value"], [
            ["seed tasks", f"{args.seed_tasks} ({len(seeds)}, {sum(s['is_classification'] for s in seeds)} "
                           "classification)"], ["generator", generator],
            ["rounds x prompts", f"{args.rounds} x {args.prompts_per_round}"],
            ["filters", f"length {args.min_length}-{args.max_length}, ROUGE-L < {args.rouge_threshold}, "
                        f"{len(args.blocked_keywords)} blocked keywords"], ["writes", f"{args.output_dir}/sft.jsonl"]]))
        print("\nfirst task-generation prompt:\n" + task_prompt(args, [s["instruction"] for s in
                                                                       rng.sample(seeds, args.seed_per_prompt)]))
        return None
    if args.render_formats:
        os.makedirs(args.output_dir, exist_ok=True)
        texts = render_formats(args, seeds, args.render_formats, rng)
        with open(os.path.join(args.output_dir, "format_text.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"id": f"format-{i}", "text": t}, ensure_ascii=False) + "\n"
                         for i, t in enumerate(texts))
        print(f"wrote {len(texts)} texts in the prompt formats to {args.output_dir}/format_text.jsonl\n\n{texts[2]}")
        return write_report(args.output_dir, "self_instruct_formats", {"format_texts": len(texts)},
                            wall_time_s=time.time() - start)
    from transformers import set_seed

    set_seed(args.seed)
    generate_texts = make_generator(args)
    clear_report(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    scorer = rouge_scorer()
    pool = [s["instruction"] for s in seeds]
    machine, records, task_log, rounds = [], [], [], []
    for r in range(args.rounds):
        counts = {"prompts": args.prompts_per_round, "generated": 0, "dropped": {}, "accepted": 0,
                  "classification": 0, "instances": 0, "tasks_without_instances": 0, "instances_dropped": 0}
        prompts = [task_prompt(args, [s["instruction"] for s in rng.sample(seeds, min(args.seed_per_prompt, len(seeds)))]
                                     + rng.sample(machine, min(args.machine_per_prompt, len(machine))))
                   for _ in range(args.prompts_per_round)]
        new = []
        for p, text in enumerate(generate_texts(prompts)):
            for task in parse_tasks(text):
                counts["generated"] += 1
                reason, score, similar = filter_task(task, pool, scorer, args, {t["instruction"] for t in new})
                task_log.append({"round": r, "prompt": p, "instruction": task, "dropped": reason,
                                 "rouge_l_max": score, "most_similar": similar})
                if reason:
                    counts["dropped"][reason] = counts["dropped"].get(reason, 0) + 1
                    continue
                new.append({"instruction": task, "round": r, "prompt": p, "rouge_l_max": score,
                            "most_similar": similar})
                pool.append(task)
        answers = generate_texts([classification_prompt(args, seeds, t["instruction"], rng) for t in new])
        for t, answer in zip(new, answers):
            t["is_classification"] = answer.strip().lower().startswith(("はい", "yes"))
        outputs = generate_texts([instance_prompt(args, seeds, t["instruction"], t["is_classification"], rng)
                                  for t in new])
        for t, text in zip(new, outputs):
            seen, instances = set(), []
            parsed = parse_instances(text, t["is_classification"])
            for inst in parsed[:args.max_instances]:
                key = (inst["input"], inst["output"])
                if not inst["output"] or inst["output"] == inst["input"] or key in seen or "\ufffd" in "".join(key):
                    continue
                seen.add(key)
                instances.append(inst)
            counts["instances_dropped"] += len(parsed) - len(instances)
            if not instances:
                counts["tasks_without_instances"] += 1
                continue
            counts["accepted"] += 1
            counts["classification"] += t["is_classification"]
            counts["instances"] += len(instances)
            machine.append(t["instruction"])
            for inst in instances:
                user = t["instruction"] + (f"\n\n{inst['input']}" if inst["input"] else "")
                records.append({"messages": [{"role": "user", "content": user},
                                             {"role": "assistant", "content": inst["output"]}],
                                "provenance": {"method": "self-instruct", "round": r, "prompt": t["prompt"],
                                               "generator": args.api_model or args.model_name_or_path,
                                               "is_classification": t["is_classification"],
                                               "instance_generation": "output-first" if t["is_classification"]
                                               else "input-first", "rouge_l_max": t["rouge_l_max"],
                                               "most_similar_task": t["most_similar"]}})
        rounds.append(counts)
        print(f"round {r + 1}: {counts}")
    with open(os.path.join(args.output_dir, "sft.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    with open(os.path.join(args.output_dir, "tasks.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in task_log)
    reasons = sorted({k for c in rounds for k in c["dropped"]})
    table = markdown_table(["round", "prompts", "generated", *[f"dropped: {k}" for k in reasons], "tasks kept",
                            "classification", "without instances", "SFT records"],
                           [[i + 1, c["prompts"], c["generated"], *[c["dropped"].get(k, 0) for k in reasons],
                             c["accepted"], c["classification"], c["tasks_without_instances"], c["instances"]]
                            for i, c in enumerate(rounds)])
    examples = [f"- `{rec['messages'][0]['content'][:80]!r}` -> `{rec['messages'][1]['content'][:60]!r}`"
                for rec in records[:5]]
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join([f"# Self-Instruct from {args.seed_tasks}", "", table, "", "## First records", *examples])
                + "\n")
    print(table)
    return write_report(args.output_dir, "self_instruct", {
        "seed_tasks": len(seeds), "rounds": rounds, "tasks_generated": sum(c["generated"] for c in rounds),
        "tasks_kept": len(machine), "sft_records": len(records), "rouge_threshold": args.rouge_threshold,
        "generator": args.api_model or args.model_name_or_path}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
