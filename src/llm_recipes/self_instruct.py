"""Self-Instruct's pieces (Wang et al. 2023, arXiv 2212.10560) for Japanese: the prompts (task generation, the
classification check, input-first and output-first instances), the parsers of their continuations, the task filter
(length, blocked keywords, repeats, ROUGE-L over characters) and the seed-task reader. scripts/self_instruct.py runs
the rounds."""

import re

from llm_recipes.errors import RecipeError

TASK_PROMPT = "一連のタスクを考えてください:\n\n"
CLASSIFICATION_PROMPT = "次のタスクは、出力のラベルが有限個の分類タスクとみなせますか？\n\n"
INPUT_FIRST_PROMPT = ("次のタスクの例を考えてください。できれば複数の例を作ってください。追加の入力が必要ないタスクでは、"
                      "出力を直接書いてください。\n\n")
OUTPUT_FIRST_PROMPT = ("分類タスクの定義とクラスラベルが与えられたら、各クラスラベルに対応する入力を作ってください。入力が"
                       "不要なタスクでは、正しいクラスラベルだけを書いてください。\n\n")
BLOCKED = ["画像", "写真", "図", "グラフ", "ファイル", "地図", "描い", "動画", "音声", "音楽", "image", "picture", "graph",
           "file", "map", "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram"]


class CharTokenizer:
    """For rouge_score: its default tokenizer keeps [a-z0-9] only, so Japanese text scores 0 against anything."""

    def tokenize(self, text):
        from llm_recipes.corpus.steps import char_tokens

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
