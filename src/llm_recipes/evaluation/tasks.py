"""Local lm-eval tasks: check task files against their official formats, point task YAMLs at them, and make prompt /
choice-order variants for prompt-variance reports."""

import json
import os
import random
import shutil

import yaml

from llm_recipes.data import iter_jsonl
from llm_recipes.errors import RecipeError

JNLI_LABELS = ("entailment", "contradiction", "neutral")


class FunctionRef(str):
    """lm-eval's `!function module.name` tag, kept as is when a task YAML is read and written back."""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))
_Dumper.add_representer(FunctionRef, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def _jsonl_rows(path, required):
    return [(n, r) for n, r in iter_jsonl(path, required_keys=required)]


def check_task_file(task, path):
    """Validate a task file against its format; returns the number of examples. Errors name file, line and field."""
    if not os.path.isfile(path):
        raise RecipeError(f"task_data.{task}: file not found: {path}")
    base = task.replace("_local", "")
    if base == "jsquad":
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            articles = doc["data"]
            return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RecipeError(f"{path}: not a SQuAD-style JSON document {{\"data\": [{{\"paragraphs\": [{{\"qas\": "
                              f"...}}]}}]}} ({type(e).__name__}: {e})") from None
    if base == "jcommonsenseqa":
        rows = _jsonl_rows(path, ["question", "label", *[f"choice{i}" for i in range(5)]])
        for n, r in rows:
            if not isinstance(r["label"], int) or not 0 <= r["label"] <= 4:
                raise RecipeError(f"{path}:{n}: label {r['label']!r} out of range (0-4)")
    elif base == "jnli":
        rows = _jsonl_rows(path, ["sentence1", "sentence2", "label"])
        for n, r in rows:
            if r["label"] not in JNLI_LABELS:
                raise RecipeError(f"{path}:{n}: label {r['label']!r} is not one of {', '.join(JNLI_LABELS)}")
    elif base == "marc_ja":
        rows = _jsonl_rows(path, ["sentence", "label"])
        for n, r in rows:
            if r["label"] not in ("positive", "negative"):
                raise RecipeError(f"{path}:{n}: label {r['label']!r} is not positive or negative")
    elif base == "niilc":
        rows = _jsonl_rows(path, ["question", "answers"])
        for n, r in rows:
            if not isinstance(r["answers"], list) or not r["answers"]:
                raise RecipeError(f"{path}:{n}: 'answers' must be a non-empty list of strings")
    else:
        rows = _jsonl_rows(path, [])
    if not rows:
        raise RecipeError(f"{path}: no examples")
    return len(rows)


def chance_level(task, path):
    """Expected accuracy of uniform guessing for multiple-choice tasks (None for generation tasks)."""
    base = task.replace("_local", "")
    if base == "jnli":
        return 1 / 3
    if base == "marc_ja":
        return 1 / 2
    if base == "jcommonsenseqa":
        rows = [r for _, r in iter_jsonl(path)]
        return sum(1 / sum(k.startswith("choice") for k in r) for r in rows) / len(rows)
    return None


def permute_choices(path, out_path, seed):
    """A copy of a JCommonsenseQA-format file with each example's choices shuffled (label follows its answer)."""
    rng = random.Random(seed)
    with open(out_path, "w", encoding="utf-8") as f:
        for _, r in iter_jsonl(path):
            keys = sorted(k for k in r if k.startswith("choice"))
            choices = [r[k] for k in keys]
            order = list(range(len(choices)))
            rng.shuffle(order)
            r = {**r, **{k: choices[i] for k, i in zip(keys, order)}, "label": order.index(r["label"])}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


CONTENT_FIELDS = {"jcommonsenseqa": ["question"], "jnli": ["sentence1", "sentence2"], "marc_ja": ["sentence"]}


def content_free(task, path, out_path):
    """A copy of a multiple-choice file with its content replaced by "N/A" (choices and labels kept), for contextual
    calibration (Zhao et al., 2021): the model's preference among the choices when it is given no content."""
    fields = CONTENT_FIELDS[task.replace("_local", "")]
    with open(out_path, "w", encoding="utf-8") as f:
        for _, r in iter_jsonl(path):
            f.write(json.dumps({**r, **{k: "N/A" for k in fields}}, ensure_ascii=False) + "\n")


def resolve_tasks(task_dir, tasks, task_data, out_dir, prompt_templates=None, choice_permutations=0, seed=1234,
                  num_fewshot=0, contextual_calibration=False):
    """Write task YAMLs into out_dir with data_files set from task_data, plus one variant per extra prompt template
    and choice permutation (and a content-free copy for contextual calibration). Returns {task: [variant names]},
    {task: n examples}, {task: chance}, {task: content-free variant name}."""
    os.makedirs(out_dir, exist_ok=True)
    if os.path.isfile(os.path.join(task_dir, "utils.py")):
        shutil.copy(os.path.join(task_dir, "utils.py"), out_dir)
    variants, counts, chance, calibration = {}, {}, {}, {}
    for task in tasks:
        src = os.path.join(task_dir, f"{task}.yaml")
        if not os.path.isfile(src):
            raise RecipeError(f"tasks: no task file {src}")
        with open(src, encoding="utf-8") as f:
            config = yaml.load(f, Loader=_Loader)
        files = task_data.get(task)
        if files is None:
            raise RecipeError(f"task_data: no local file for task '{task}' (add task_data.{task}: path)")
        files = dict(files) if isinstance(files, dict) else {config["validation_split"]: files}
        split = config["validation_split"]
        if split not in files:
            raise RecipeError(f"task_data.{task}: needs a '{split}' file")
        for name, path in files.items():
            n = check_task_file(task, path)
            if name == split:
                counts[task] = n
        chance[task] = chance_level(task, files[split])
        if num_fewshot:
            if "train" not in files:
                raise RecipeError(f"task_data.{task}: num_fewshot {num_fewshot} needs a 'train' file, so few-shot "
                                  "examples never come from the evaluated ones")
            config["fewshot_split"] = "train"
        data_sets = [("", files)]
        for i in range(choice_permutations):
            if task.replace("_local", "") != "jcommonsenseqa":
                break
            permuted = os.path.join(out_dir, f"{task}.perm{i}.jsonl")
            permute_choices(files[split], permuted, seed + i)
            data_sets.append((f"@perm{i}", {**files, split: permuted}))
        templates_only_first = []
        if contextual_calibration and task.replace("_local", "") in CONTENT_FIELDS:
            cf = os.path.join(out_dir, f"{task}.content_free.jsonl")
            content_free(task, files[split], cf)
            templates_only_first = [("@content_free", {**files, split: cf})]
        templates = [("", config["doc_to_text"])] + [
            (f"@prompt{i + 1}", t) for i, t in enumerate((prompt_templates or {}).get(task, []))]
        variants[task] = []
        jobs = [(d, t) for d in data_sets for t in templates] + [(d, templates[0]) for d in templates_only_first]
        for (data_suffix, data_files), (prompt_suffix, template) in jobs:
            name = f"{task}{prompt_suffix}{data_suffix}"
            variant = {**config, "task": name, "doc_to_text": template,
                       "dataset_kwargs": {**config.get("dataset_kwargs", {}),
                                          "data_files": {s: os.path.abspath(p) for s, p in data_files.items()}}}
            with open(os.path.join(out_dir, f"{name}.yaml"), "w", encoding="utf-8") as f:
                yaml.dump(variant, f, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
            if data_suffix == "@content_free":
                calibration[task] = name
            else:
                variants[task].append(name)
    return variants, counts, chance, calibration
