"""The shared package installs and imports by name from anywhere; scripts shadow nothing; no import cycles;
recipes load from Python without argv."""
import ast
import glob
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError

PACKAGE = os.path.join(REPO, "src", "llm_recipes")


def python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ""})


def test_no_path_manipulation_anywhere():
    for path in glob.glob(os.path.join(REPO, "**", "*.py"), recursive=True):
        if "/.venv/" in path or path.endswith("test_packaging.py"):
            continue
        assert "sys.path" not in open(path, encoding="utf-8").read(), path


def test_package_imports_from_outside_the_checkout(tmp_path):
    result = python("import llm_recipes, llm_recipes.scripts.sft as s, llm_recipes.corpus.steps as b; "
                    "print(s.main.__module__, b.JapaneseQualityFilter.__module__)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["llm_recipes.scripts.sft", "llm_recipes.corpus.steps"]


def test_no_script_shadows_an_installed_or_standard_module(tmp_path):
    """`python scripts/x.py` (or research/x.py) puts its folder first on sys.path: no file there may hide a module the libraries import
    (scripts/evaluation.py once hid Hugging Face's `evaluate` from lm-eval)."""
    names = sorted({os.path.splitext(os.path.basename(p))[0] for folder in ("scripts", "research", "benchmarks")
                    for p in glob.glob(os.path.join(REPO, folder, "*.py"))} - {"__init__"})
    code = ("import importlib.util, json, sys; names = json.loads(sys.argv[1]); print(json.dumps([n for n in names "
            "if n in sys.stdlib_module_names or importlib.util.find_spec(n) is not None]))")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(names)], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    assert len(names) > 15 and json.loads(result.stdout) == []


def package_imports():
    """module -> the llm_recipes modules it imports (function-level imports included), from the source's AST."""
    graph = {}
    for path in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True):
        if os.path.relpath(path, PACKAGE).startswith("scripts" + os.sep):  # the stage scripts sit on top of it
            continue
        rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
        module = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
        targets = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llm_recipes"):
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("llm_recipes")}
        graph[module] = targets
    return graph


def test_package_has_no_import_cycle():
    graph = package_imports()
    imported = {t for ts in graph.values() for t in ts}
    assert len(graph) > 20 and not [t for t in imported if t.startswith(("llm_recipes.scripts", "llm_recipes.research"))]
    state = {}

    def visit(node, stack):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "import cycle: " + " -> ".join([*stack, node])
        state[node] = "open"
        for target in graph.get(node, ()):
            if target in graph and target != node:
                visit(target, [*stack, node])
        state[node] = "done"

    for module in graph:
        visit(module, [])


def test_parsing_a_corpus_recipe_imports_neither_torch_nor_trl():
    result = python("import sys; from llm_recipes.config import load_recipe; "
                    "(a,) = load_recipe('corpus', 'recipes/tiny/corpus.yaml'); "
                    "print(a.input_path, [m for m in ('torch', 'trl') if m in sys.modules])", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["recipes/tiny/data/docs.jsonl", "[]"]


def test_load_recipe_takes_dicts_and_nested_values_without_argv(tmp_path):
    stages = [{"dataset_name": "a.jsonl", "max_steps": 3, "block_size": 64},
              {"datasets": [{"path": "b.jsonl", "weight": 2}], "max_tokens": 1000}]
    args, training_args = load_recipe("pretrain", "recipes/tiny/pretrain.yaml", data_stages=stages,
                                      output_dir=str(tmp_path), learning_rate=1e-4)
    assert args.data_stages == stages and training_args.learning_rate == 1e-4 and args.hidden_size == 128
    assert args.tokenizer_name_or_path == os.path.join("outputs", "tiny", "tokenizer")  # {run_dir} filled
    (corpus,) = load_recipe("corpus", {"input_path": "x.jsonl", "output_dir": str(tmp_path),
                                       "gopher_quality": {"ja": {"min_doc_words": 5}}, "executor_options": {"a": 1}})
    assert corpus.gopher_quality == {"ja": {"min_doc_words": 5}} and corpus.executor_options == {"a": 1}
    with pytest.raises(RecipeError, match="unknown key 'learning_rat' .*did you mean 'learning_rate'"):
        load_recipe("pretrain", "recipes/tiny/pretrain.yaml", learning_rat=1.0)
    with pytest.raises(RecipeError, match="missing required key"):
        load_recipe("corpus", {"output_dir": str(tmp_path)})
    with pytest.raises(RecipeError, match="needs a recipe folder"):
        load_recipe("corpus", {"input_path": "{recipe_dir}/x.jsonl", "output_dir": str(tmp_path)})


def test_report_plots_leave_the_callers_matplotlib_backend_alone(tmp_path):
    """A notebook that runs a stage keeps its inline backend: no stage switches pyplot to Agg behind its back."""
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "from llm_recipes.corpus.accounting import plot_funnel\n"
        f"plot_funnel({str(tmp_path / 'f.png')!r}, 10, {{'a': 3, 'b': 2}})\n"
        "print(matplotlib.get_backend())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svg"
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"matplotlib\.use\(|import matplotlib\.pyplot",
                         "".join(p.read_text() for d in ("src", "scripts") for p in pathlib.Path(REPO, d).rglob("*.py")))
