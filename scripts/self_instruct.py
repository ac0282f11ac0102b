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
import re
import time
from dataclasses import dataclass, field

from llm_recipes.config import RecipeError, parse, run
from llm_recipes.reporting.report import clear_report, markdown_table, write_report

TASK_PROMPT = "一連のタスクを考えてください:\n\n"
CLASSIFICATION_PROMPT = "次のタスクは、出力のラベルが有限個の分類タスクとみなせますか？\n\n"
INPUT_FIRST_PROMPT = ("次のタスクの例を考えてください。できれば複数の例を作ってください。追加の入力が必要ないタスクでは、"
                      "出力を直接書いてください。\n\n")
OUTPUT_FIRST_PROMPT = ("分類タスクの定義とクラスラベルが与えられたら、各クラスラベルに対応する入力を作ってください。入力が"
                       "不要なタスクでは、正しいクラスラベルだけを書いてください。\n\n")
BLOCKED = ["画像", "写真", "図", "グラフ", "ファイル", "地図", "描い", "動画", "音声", "音楽", "image", "picture", "graph",
           "file", "map", "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram"]


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


class CharTokenizer:
    """For rouge_score: its default tokenizer keeps [a-z0-9] only, so Japanese text scores 0 against anything."""

    def tokenize(self, text):
        from llm_recipes.corpus.blocks import char_tokens

        return char_tokens(text.lower()).split()


def rouge_scorer():
    from rouge_score import rouge_scorer as rs

    return rs.RougeScorer(["rougeL"], tokenizer=CharTokenizer())


def read_seed_tasks(path):
    from llm_recipes.data import iter_jsonl

    tasks = []
    for line, record in iter_jsonl(path, required_keys=["instruction", "instances", "is_classification"],
                                   text_keys=["instruction"]):
        if not record["instances"] or not all(isinstance(i, dict) and i.get("output") for i in record["instances"]):
            raise RecipeError(f"{path}:{line}: instances must be a non-empty list of {{input, output}} with an output")
        tasks.append(record)
    if not tasks:
        raise RecipeError(f"{path}: no seed tasks")
    return tasks


def task_prompt(args, tasks):
    lines = [f"タスク{i + 1}: {t}" for i, t in enumerate(tasks)]
    return args.task_prompt + "\n".join(lines) + f"\nタスク{len(tasks) + 1}:"


def parse_tasks(text):
    """The continuation of a task-generation prompt -> tasks: its first line finishes the open `タスクN:`, and every
    further `タスクK:` starts one more (the first line of each part is the task)."""
    parts = re.split(r"タスク\s*\d+\s*[:：]", text)
    return [p.strip().split("\n")[0].strip() for p in parts if p.strip()]


def filter_task(task, pool, scorer, args, seen):
    """(reason dropped or None, max ROUGE-L F-measure against the pool, most similar pooled task)."""
    length = len(CharTokenizer().tokenize(task))
    if length < args.min_length:
        return "too_short", None, None
    if length > args.max_length:
        return "too_long", None, None
    lowered = task.lower()
    if any(k.lower() in lowered for k in args.blocked_keywords):
        return "blocked_keyword", None, None
    if not re.match(r"\w", task) or "\ufffd" in task:  # starts with punctuation, or bytes cut mid-character
        return "not_text", None, None
    if task in seen:
        return "repeated", None, None
    best, similar = 0.0, None
    for other in pool:
        score = scorer.score(other, task)["rougeL"].fmeasure
        if score > best:
            best, similar = score, other
    if best >= args.rouge_threshold:
        return "rouge_l", best, similar
    return None, best, similar


def classification_prompt(args, seeds, task, rng):
    shots = rng.sample(seeds, min(len(seeds), 6))
    lines = [f"タスク: {s['instruction']}\n分類タスクか: {'はい' if s['is_classification'] else 'いいえ'}" for s in shots]
    return args.classification_prompt + "\n\n".join(lines) + f"\n\nタスク: {task}\n分類タスクか:"


def instance_prompt(args, seeds, task, is_classification, rng):
    same = [s for s in seeds if s["is_classification"] == is_classification] or seeds
    shots = rng.sample(same, min(len(same), 3))
    if is_classification:
        blocks = ["タスク: " + s["instruction"] + "".join(f"\nクラスラベル: {i['output']}\n入力: {i['input']}"
                                                        for i in s["instances"]) for s in shots]
        return args.output_first_prompt + "\n\n".join(blocks) + f"\n\nタスク: {task}\nクラスラベル:"
    blocks = ["タスク: " + s["instruction"] + "".join(f"\n入力: {i['input']}\n出力: {i['output']}" for i in s["instances"])
              for s in shots]
    return args.input_first_prompt + "\n\n".join(blocks) + f"\n\nタスク: {task}\n入力:"


def parse_instances(text, is_classification):
    """The continuation of an instance prompt (it ends with the first field's name) -> [{input, output}]: input-first
    pairs `入力:` with the next `出力:`, output-first `クラスラベル:` with the next `入力:`; stops at the next task."""
    first, second = ("クラスラベル", "入力") if is_classification else ("入力", "出力")
    text = re.split(r"\n\s*タスク\s*[:：]", f"{first}:" + text)[0]
    fields = re.split(rf"\s*({first}|{second})\s*[:：]", text)  # ['', name, value, name, value, ...]
    instances, pending = [], None
    for name, value in zip(fields[1::2], fields[2::2]):
        value = value.strip()
        if name == first:
            pending = value
        elif pending is not None:
            instances.append({"input": value, "output": pending} if is_classification else
                             {"input": pending, "output": value})
            pending = None
    return instances


def render_formats(args, seeds, n, rng):
    """Texts in the three prompt formats, completed from the seed tasks themselves: a task list, a classification
    check with its answer, an instance prompt with the seed's instances."""
    texts = []
    for i in range(n):
        task = rng.choice(seeds)
        if i % 3 == 0:
            listed = [s["instruction"] for s in rng.sample(seeds, min(len(seeds), args.seed_per_prompt + 2))]
            texts.append(args.task_prompt + "\n".join(f"タスク{k + 1}: {t}" for k, t in enumerate(listed)))
        elif i % 3 == 1:
            answer = "はい" if task["is_classification"] else "いいえ"
            texts.append(classification_prompt(args, seeds, task["instruction"], rng) + f" {answer}")
        else:
            first, second = ("output", "input") if task["is_classification"] else ("input", "output")
            names = ("入力", "出力") if first == "input" else ("クラスラベル", "入力")
            body = "".join(f"{' ' if k == 0 else chr(10) + names[0] + ': '}{inst[first]}\n{names[1]}: {inst[second]}"
                           for k, inst in enumerate(task["instances"]))
            texts.append(instance_prompt(args, seeds, task["instruction"], task["is_classification"], rng) + body)
    return texts


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
