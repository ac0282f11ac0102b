"""Where a stage script or research tool is, and its imported module: the one resolver that the runner, sweeps and
`config.stage_arguments` share (so `sft`, `scripts/sft.py`, `verdict` and a recipe's own `make_data.py` mean the
same file everywhere). It imports only llm_recipes.errors, so any module may import it."""

import importlib.util
import os
import sys

from llm_recipes.errors import RecipeError

SCRIPTS_DIR = os.path.dirname(importlib.util.find_spec("llm_recipes.scripts").origin)  # the stages
RESEARCH_DIR = os.path.dirname(importlib.util.find_spec("llm_recipes.research").origin)  # verdict, sweep, probes
REPO_ROOT = os.path.dirname(SCRIPTS_DIR)  # the checkout, for an editable install (configs/ lives there)
PACKAGES = {SCRIPTS_DIR: "llm_recipes.scripts", RESEARCH_DIR: "llm_recipes.research"}


def script_path(script, recipe_dir=None):
    """`scripts/pretrain.py`, `pretrain.py`, `pretrain` or `verdict` -> the script's file: an existing path wins, then
    a file of the recipe's own folder (`make_data.py` next to its recipe.yaml), then a stage script (scripts/), then
    a research tool (research/)."""
    if os.path.isfile(script):
        return script
    if recipe_dir and os.path.isfile(os.path.join(recipe_dir, script)):
        return os.path.join(recipe_dir, script)
    name = os.path.splitext(os.path.basename(script))[0]
    for folder in PACKAGES:
        if os.path.isfile(os.path.join(folder, f"{name}.py")):
            return os.path.join(folder, f"{name}.py")
    raise RecipeError(f"script: {script} is neither a file nor a script in {SCRIPTS_DIR} or {RESEARCH_DIR}")


def script_module(script, recipe_dir=None):
    """The imported module of a script (as `script_path` finds it): llm_recipes.scripts.<name> or
    llm_recipes.research.<name>, or a recipe's own script loaded from its file."""
    path = os.path.realpath(script_path(script, recipe_dir))
    name = os.path.splitext(os.path.basename(path))[0]
    package = next((p for folder, p in PACKAGES.items() if os.path.dirname(path) == os.path.realpath(folder)), None)
    if package:
        return importlib.import_module(f"{package}.{name}")
    key = "llm_recipes_local." + "".join(c if c.isalnum() else "_" for c in os.path.relpath(path, REPO_ROOT))
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look their module up while being built
        spec.loader.exec_module(module)
    return sys.modules[key]
