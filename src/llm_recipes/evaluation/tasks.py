"""Local lm-eval tasks: check task files against their official formats, point task YAMLs at them, and make prompt /
choice-order variants for prompt-variance reports.

Three families live in lm_eval_tasks/: simple-prompt tasks for base models (`*_simple`, once `*_local`), the Japanese
LLM leaderboard's tasks on local files (`ja_leaderboard_*_local`: lm-eval's own definitions through `include:`, only
the data source replaced) and llm-jp-eval's categories (`*_llmjp`). Files in a dataset's released format are read and
checked here (file:line errors) and written as the rows lm-eval reads; every file's sha256 is recorded."""

import hashlib
import json
import os
import random
import shutil

import yaml

from llm_recipes.data import iter_jsonl
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation import benchmark_readers as readers

JNLI_LABELS = ("entailment", "contradiction", "neutral")
MARC_LABELS = ("positive", "negative")
ALIASES = {f"{t}_local": f"{t}_simple" for t in ("jcommonsenseqa", "jnli", "jsquad", "marc_ja", "niilc")}
LM_EVAL_INCLUDE = "lm_eval/tasks/"  # an include starting with this resolves inside the installed lm-eval


class FunctionRef(str):
    """lm-eval's `!function module.name` tag, kept as is when a task YAML is read and written back."""


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))
_Dumper.add_representer(FunctionRef, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def _kind(task):
    """The dataset a simple-prompt task reads ('jcommonsenseqa' for jcommonsenseqa_simple or jcommonsenseqa_local)."""
    return ALIASES.get(task, task).removesuffix("_simple")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _label_ids(names):
    """Accept a dataset's released string labels or the hub's ClassLabel ids; return rows with ids."""
    def read(path):
        def check(r):
            if r["label"] not in names and r["label"] not in range(len(names)):
                return f"label {r['label']!r} is not one of {', '.join(names)} (or 0-{len(names) - 1})"
        rows = readers.jsonl(path, ["sentence", "label"] if len(names) == 2 else ["sentence1", "sentence2", "label"],
                             [check])
        return [{**r, "label": names.index(r["label"]) if isinstance(r["label"], str) else r["label"]} for r in rows]
    return read


def _jcommonsenseqa(path):
    def check(r):
        if not isinstance(r["label"], int) or not 0 <= r["label"] <= 4:
            return f"label {r['label']!r} out of range (0-4)"
    return readers.jsonl(path, ["question", "label", *[f"choice{i}" for i in range(5)]], [check])


def _is_squad_document(path):
    with open(path, encoding="utf-8-sig") as f:
        head = f.read(4096).lstrip()
    return head.startswith("{") and head[1:].lstrip().startswith(('"version"', '"data"'))


def _jsquad(path):
    if _is_squad_document(path):
        return readers.squad(path)

    def check(r):
        if not isinstance(r["answers"], dict) or not r["answers"].get("text"):
            return "'answers' must be {\"text\": [...], \"answer_start\": [...]} with at least one text"
    return readers.jsonl(path, ["context", "question", "answers"], [check])


def _jaqket(path):
    def check(r):
        if not isinstance(r["answers"], dict) or not r["answers"].get("text"):
            return "'answers' must be {\"text\": [...], ...} (the hub rows' layout) with at least one text"
        if not isinstance(r["ctxs"], dict) or not isinstance(r["ctxs"].get("text"), list):
            return "'ctxs' must be {\"text\": [...], ...} (the hub rows' layout: lists per field)"
    return readers.jsonl(path, ["question", "answers", "ctxs"], [check])


def _mgsm(path):
    if path.endswith(".tsv"):
        return readers.mgsm_tsv(path)

    def check(r):
        if not isinstance(r["answer_number"], int):
            return f"answer_number {r['answer_number']!r} is not an integer"
    return readers.jsonl(path, ["question", "answer_number"], [check])


def _xwinograd(path):
    def check(r):
        if str(r["answer"]) not in ("1", "2"):
            return f"answer {r['answer']!r} is not 1 or 2"
    return readers.jsonl(path, ["sentence1", "sentence2", "answer"], [check])


def _jhumaneval(path):
    return readers.jsonl(path, ["task_id", "prompt", "test", "entry_point"])


def _jemhopqa(path):
    return [{**r, "answers": [str(r["answer"])]} for r in readers.json_array(path, ["question", "answer"])]


def _niilc(path):
    rows = readers.niilc_xml(path)
    return [{**r, "answers": r["answers"] + ([",".join(r["answers"])] if len(r["answers"]) > 1 else [])}
            for r in rows]


def _xlsum(path):
    return readers.jsonl(path, ["text", "summary"])


def _wmt(files):
    if not isinstance(files, dict) or set(files) != {"source", "reference"}:
        raise RecipeError(f"a WMT split needs {{source: file, reference: file}}, got {files!r}")
    return readers.wmt_pair(files["source"], files["reference"])


# task -> reader of one split's file(s) in the dataset's released format (or the hub's rows, where stated)
READERS = {
    "ja_leaderboard_jcommonsenseqa_local": _jcommonsenseqa,
    "ja_leaderboard_jnli_local": _label_ids(JNLI_LABELS),
    "ja_leaderboard_jsquad_local": _jsquad,
    "ja_leaderboard_marc_ja_local": _label_ids(MARC_LABELS),
    "ja_leaderboard_jaqket_v2_local": _jaqket,
    "ja_leaderboard_mgsm_local": _mgsm,
    "ja_leaderboard_xlsum_local": _xlsum,
    "ja_leaderboard_xwinograd_local": _xwinograd,
    "jmmlu_llmjp": readers.jmmlu_csv,
    "jemhopqa_llmjp": _jemhopqa,
    "niilc_llmjp": _niilc,
    "mgsm_ja_llmjp": _mgsm,
    "xlsum_ja_llmjp": _xlsum,
    "wmt20_en_ja_llmjp": _wmt,
    "wmt20_ja_en_llmjp": _wmt,
    "jhumaneval_llmjp": _jhumaneval,
}
CHANCE = {"ja_leaderboard_jcommonsenseqa_local": 1 / 5, "ja_leaderboard_jnli_local": 1 / 3,
          "ja_leaderboard_marc_ja_local": 1 / 2, "ja_leaderboard_xwinograd_local": 1 / 2, "jmmlu_llmjp": 1 / 4}
# llm-jp-eval's category names (plus SA for sentiment, which it does not cover)
CATEGORY = {"jcommonsenseqa": "MC (multiple choice)", "ja_leaderboard_xwinograd_local": "MC (multiple choice)",
            "jnli": "NLI", "jsquad": "RC (reading comprehension)", "marc_ja": "SA (sentiment)",
            "ja_leaderboard_jaqket_v2_local": "QA", "niilc": "QA", "jemhopqa_llmjp": "QA",
            "jmmlu_llmjp": "HE (human exams)", "mgsm": "MR (math)", "xlsum": "SUM (summarisation)",
            "wmt20": "MT (translation)", "jhumaneval_llmjp": "CG (code)"}


def category(task):
    for key in (task, _kind(task)):
        if key in CATEGORY:
            return CATEGORY[key]
    for key, name in CATEGORY.items():
        if key in task:
            return name
    return "other"


def expand_tasks(task_dir, tasks):
    """Replace each group name (a YAML in task_dir with `group:` and `task: [...]`) by its tasks."""
    expanded = []
    for task in tasks:
        path = os.path.join(task_dir, f"{task}.yaml")
        config = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                config = yaml.load(f, Loader=_Loader) or {}
        members = config.get("task") if "group" in config else None
        expanded += [m for m in members if m not in expanded] if members else ([task] if task not in expanded else [])
    return expanded


def _lm_eval_include(include):
    if isinstance(include, str) and include.startswith(LM_EVAL_INCLUDE):
        import lm_eval

        return os.path.join(os.path.dirname(os.path.abspath(lm_eval.__file__)), include[len("lm_eval/"):])
    return include


def _merged_config(path, config):
    """The task's effective configuration, with lm-eval's `include:` applied the way lm-eval applies it."""
    if "include" not in config:
        return config
    from lm_eval.tasks._yaml_loader import load_yaml

    included = _lm_eval_include(config["include"])
    if not os.path.isfile(included):
        raise RecipeError(f"{path}: include {config['include']} not found ({included}); is lm-eval installed?")
    return {**load_yaml(included, resolve_func=False), **{k: v for k, v in config.items() if k != "include"}}


def _file_list(spec):
    if isinstance(spec, dict):
        return [p for v in spec.values() for p in _file_list(v)]
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


def _read_split(task, spec):
    """Rows of one split: a file, a list of files (concatenated, e.g. JMMLU's subjects) or {source, reference}."""
    for path in _file_list(spec):
        if not os.path.isfile(path):
            raise RecipeError(f"task_data.{task}: file not found: {path}")
    if task.startswith("wmt20"):
        return _wmt(spec)
    return [row for path in _file_list(spec) for row in READERS[task](path)]


def _resolve_converted(task, src, config, files, out_dir, num_fewshot):
    """Read a leaderboard / llm-jp-eval task's files in their released format, write the rows lm-eval reads, and the
    task YAML pointing at them. Returns (n evaluated, provenance)."""
    merged = _merged_config(src, config)
    split = merged.get("test_split") or merged.get("validation_split")
    if task.startswith("wmt20") and isinstance(files, dict) and "source" in files:
        files = {split: files}  # {source, reference} of the evaluated split
    elif not isinstance(files, dict):
        files = {split: files}
    if split not in files:
        raise RecipeError(f"task_data.{task}: needs a '{split}' file (the split lm-eval evaluates)")
    data_files, provenance = {}, {"files": {}, "read_as": {}}
    for name, spec in files.items():
        rows = _read_split(task, spec)
        out = os.path.join(out_dir, f"{task}.{name}.jsonl")
        with open(out, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        data_files[name] = os.path.abspath(out)
        provenance["files"][name] = [{"path": os.path.abspath(p), "sha256": sha256(p)} for p in _file_list(spec)]
        provenance["read_as"][name] = {"path": os.path.abspath(out), "sha256": sha256(out), "rows": len(rows)}
        if name == split:
            n = len(rows)
    own = merged.get("num_fewshot") or 0
    shots = own if "include" in config or num_fewshot is None else num_fewshot
    fewshot_split = merged.get("fewshot_split") or merged.get("training_split")
    if shots and fewshot_split not in files:
        raise RecipeError(f"task_data.{task}: {shots}-shot needs a '{fewshot_split}' file, so few-shot examples "
                          "never come from the evaluated ones")
    if "include" in config:  # lm-eval's definition as it is; only the data source is ours
        variant = {"include": _lm_eval_include(config["include"]), "task": task,
                   **{k: v for k, v in config.items() if k not in ("include", "task")}}
    else:
        variant = {**config, "task": task}
        if num_fewshot is not None:
            variant["num_fewshot"] = num_fewshot
    variant["dataset_kwargs"] = {"data_files": data_files}
    with open(os.path.join(out_dir, f"{task}.yaml"), "w", encoding="utf-8") as f:
        yaml.dump(variant, f, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    return n, provenance


def _jsonl_rows(path, required):
    return [(n, r) for n, r in iter_jsonl(path, required_keys=required)]


def check_task_file(task, path):
    """Validate a task file against its format; returns the number of examples. Errors name file, line and field."""
    if not os.path.isfile(path):
        raise RecipeError(f"task_data.{task}: file not found: {path}")
    base = _kind(task)
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
    base = _kind(task)
    if base in CHANCE:
        return CHANCE[base]
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
    fields = CONTENT_FIELDS[_kind(task)]
    with open(out_path, "w", encoding="utf-8") as f:
        for _, r in iter_jsonl(path):
            f.write(json.dumps({**r, **{k: "N/A" for k in fields}}, ensure_ascii=False) + "\n")


def resolve_tasks(task_dir, tasks, task_data, out_dir, prompt_templates=None, choice_permutations=0, seed=1234,
                  num_fewshot=None, contextual_calibration=False):
    """Write task YAMLs into out_dir with data_files set from task_data, plus one variant per extra prompt template
    and choice permutation (and a content-free copy for contextual calibration). `num_fewshot` (None: each task's
    own) applies to our tasks; the leaderboard tasks keep lm-eval's. Returns {task: [variant names]},
    {task: n examples}, {task: chance}, {task: content-free variant name}, {task: provenance (files, sha256)}."""
    os.makedirs(out_dir, exist_ok=True)
    if os.path.isfile(os.path.join(task_dir, "utils.py")):
        shutil.copy(os.path.join(task_dir, "utils.py"), out_dir)
    variants, counts, chance, calibration, provenance = {}, {}, {}, {}, {}
    for task in tasks:
        src = os.path.join(task_dir, f"{ALIASES.get(task, task)}.yaml")
        if not os.path.isfile(src):
            raise RecipeError(f"tasks: no task file {src}")
        with open(src, encoding="utf-8") as f:
            config = yaml.load(f, Loader=_Loader)
        files = task_data.get(task)
        if files is None:
            raise RecipeError(f"task_data: no local file for task '{task}' (add task_data.{task}: path)")
        if task in READERS:
            counts[task], provenance[task] = _resolve_converted(task, src, config, files, out_dir, num_fewshot)
            variants[task], chance[task] = [task], CHANCE.get(task)
            continue
        files = dict(files) if isinstance(files, dict) else {config["validation_split"]: files}
        split = config["validation_split"]
        if split not in files:
            raise RecipeError(f"task_data.{task}: needs a '{split}' file")
        for name, path in files.items():
            n = check_task_file(task, path)
            if name == split:
                counts[task] = n
        provenance[task] = {"files": {name: [{"path": os.path.abspath(path), "sha256": sha256(path)}]
                                      for name, path in files.items()}}
        chance[task] = chance_level(task, files[split])
        shots = 0 if config.get("output_type") == "loglikelihood_rolling" else num_fewshot  # text: no few-shot
        if shots:
            if "train" not in files:
                raise RecipeError(f"task_data.{task}: num_fewshot {shots} needs a 'train' file, so few-shot "
                                  "examples never come from the evaluated ones")
            config["fewshot_split"] = "train"
        if shots is not None:
            config["num_fewshot"] = shots
        data_sets = [("", files)]
        for i in range(choice_permutations):
            if _kind(task) != "jcommonsenseqa":
                break
            permuted = os.path.join(out_dir, f"{task}.perm{i}.jsonl")
            permute_choices(files[split], permuted, seed + i)
            data_sets.append((f"@perm{i}", {**files, split: permuted}))
        templates_only_first = []
        if contextual_calibration and _kind(task) in CONTENT_FIELDS:
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
    return variants, counts, chance, calibration, provenance
