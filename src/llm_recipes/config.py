"""Recipes -> dataclasses. A stage's options are dataclasses (TRL / alignment-handbook style); a recipe is a YAML file
or a dict of their keys. Parsing uses transformers' `HfArgumentParser` (as TRL's `TrlParser` does), so it needs neither
torch nor TRL: parsing a corpus recipe stays light.

    python scripts/sft.py --config recipes/tiny/sft.yaml --learning_rate 1e-4      # parse(): YAML, CLI flags win
    load_recipe("sft", "recipes/tiny/sft.yaml", learning_rate=1e-4)                 # from Python: no argv
    load_recipe("pretrain", {"dataset_name": ..., "data_stages": [{...}, {...}]})   # dicts and nested values as is

Paths in a recipe folder's YAML files may say `{recipe_dir}` (the folder holding the file), `{recipe_name}` (its name)
and `{run_dir}` (the folder's recipe.yaml `run_dir`), so a copied folder (`cp -r recipes/tiny recipes/mine`) reads
its own data and writes its own outputs.
"""

import copy
import difflib
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType

import yaml

from llm_recipes.errors import RecipeError
from llm_recipes.stage_scripts import script_module

__all__ = ["RecipeError", "check_choices", "load_recipe", "load_yaml", "parse", "recipe_dict", "run", "run_plain",
           "stage_arguments", "walk"]


def load_yaml(path):
    """A YAML file, or a one-line error naming it."""
    if not os.path.isfile(path):
        raise RecipeError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


PLACEHOLDER = re.compile(r"\{(recipe_dir|recipe_name|run_dir|seed)\}")


def walk(value, leaf):
    """`value` with every leaf (anything but a list or a mapping) replaced by `leaf(leaf_value)`, lists and dicts
    rebuilt around them: the one walker over recipe values (placeholders, moved run_dirs, a run's JSON record)."""
    if isinstance(value, list):
        return [walk(v, leaf) for v in value]
    if isinstance(value, Mapping):
        return {k: walk(v, leaf) for k, v in value.items()}
    return leaf(value)


def fill_placeholders(value, context, where):
    """Replace {recipe_dir} / {recipe_name} / {run_dir} in every string of a recipe (lists and dicts included), and
    {seed} in a stage that runs once per seed (`seeds:` in recipe.yaml); elsewhere {seed} stays for the stage to
    expand over its `seeds` (with_seeds)."""
    def sub(match):
        if match.group(1) == "seed" and "seed" not in context:
            return match.group(0)
        if match.group(1) not in context:
            raise RecipeError(f"{where}: '{{{match.group(1)}}}' needs a recipe folder (a YAML file next to a "
                              f"recipe.yaml with run_dir); give a path instead")
        return context[match.group(1)]

    def fill(text):
        if not isinstance(text, str):
            return text
        filled = PLACEHOLDER.sub(sub, text)
        return os.path.normpath(filled) if filled != text and PLACEHOLDER.match(text) else filled  # a path
    return walk(value, fill)


def with_seeds(value, seeds):
    """Every string holding {seed} becomes one string per seed (in a list, in place); a lone string becomes the list.
    How a verdict or evaluation stage names the runs of a stage that recipe.yaml runs once per seed."""
    def one(text):
        return [text.replace("{seed}", str(seed)) for seed in seeds] if "{seed}" in text else [text]
    if isinstance(value, str):
        return one(value) if "{seed}" in value else value
    if isinstance(value, list):
        return [x for v in value for x in (one(v) if isinstance(v, str) else [with_seeds(v, seeds)])]
    if isinstance(value, Mapping):
        return {k: with_seeds(v, seeds) for k, v in value.items()}
    return value


def recipe_context(recipe_dir, run_dir=None):
    """What the placeholders stand for in a recipe folder; run_dir defaults to the folder's recipe.yaml run_dir."""
    context = {"recipe_dir": os.path.normpath(recipe_dir),
               "recipe_name": os.path.basename(os.path.abspath(recipe_dir))}
    path = os.path.join(recipe_dir, "recipe.yaml")
    if run_dir is None and os.path.isfile(path):
        run_dir = (load_yaml(path) or {}).get("run_dir")
    if run_dir:
        context["run_dir"] = os.path.normpath(fill_placeholders(str(run_dir), context, path))
    return context


def recipe_dict(path, run_dir=None, **changes):
    """A stage YAML of a recipe folder as a plain dict, placeholders filled (run_dir: the recipe's, or this one), with
    `changes` applied: the dict a notebook shows, edits and passes to load_recipe."""
    config = load_yaml(path)
    if not isinstance(config, Mapping):
        raise RecipeError(f"{path}: a recipe must be a mapping of key: value")
    return {**fill_placeholders(config, recipe_context(os.path.dirname(path) or ".", run_dir), path), **changes}


def check_keys(config, dataclass_types, where):
    """Every key must be a field of one of the dataclasses (or `env`); else one line naming the closest valid key."""
    if not isinstance(config, Mapping):
        raise RecipeError(f"{where}: a recipe must be a mapping of key: value")
    known = {f.name for dc in dataclass_types for f in fields(dc)} | {"env"}
    for key in config:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"{where}: unknown key '{key}'{hint}")
    return dict(config)


def check_config_file(path, dataclass_types):
    """A recipe file's keys, checked, with its placeholders filled from its folder."""
    if not os.path.isfile(path):
        raise RecipeError(f"{path}: recipe file not found")
    config = check_keys(load_yaml(path), dataclass_types, path)
    return fill_placeholders(config, recipe_context(os.path.dirname(path) or "."), path)


def machine_defaults(dataclass_types):
    """On a machine without CUDA, training stages default to CPU and fp32 (TRL configs default to bf16, which fails
    or is slow on CPU). A recipe key or CLI flag still wins. Only training dataclasses (with `bf16`) import torch."""
    if not any("bf16" in {f.name for f in fields(dc)} for dc in dataclass_types):
        return {}
    import torch

    return {} if torch.cuda.is_available() else {"bf16": False, "use_cpu": True}


def _apply_env(config):
    for key, value in (config.pop("env", None) or {}).items():  # `env:` sets environment variables, as in TRL
        os.environ[str(key)] = str(value)


OWN_METADATA = ("result",)  # field metadata keys of ours (run_identity reads `result`), not argparse keyword arguments


def argument_parser(dataclass_types):
    """transformers' HfArgumentParser for these dataclasses. It hands every key of a field's metadata to argparse, so
    the keys that are ours (OWN_METADATA) are left out of the copy it sees."""
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        @staticmethod
        def _parse_dataclass_field(parser, field):
            if any(key in field.metadata for key in OWN_METADATA):
                field = copy.copy(field)
                field.metadata = MappingProxyType({k: v for k, v in field.metadata.items() if k not in OWN_METADATA})
            HfArgumentParser._parse_dataclass_field(parser, field)

    return Parser(dataclass_types)


def parse(dataclass_types, argv=None):
    """Command line `--config file.yaml [--key value ...]` -> dataclass instances (flags win over the file)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise RecipeError("--config: expected a recipe file")
        config = check_config_file(argv[i + 1], dataclass_types)
        del argv[i:i + 2]
    _apply_env(config)
    parser = argument_parser(dataclass_types)
    defaults = {**machine_defaults(dataclass_types), **config}
    for action in parser._actions:  # a key the file sets is no longer required on the command line
        if action.dest in defaults:
            action.required = False
    parser.set_defaults(**defaults)
    try:
        return tuple(parser.parse_args_into_dataclasses(argv))
    except (ValueError, TypeError) as e:  # bad values, e.g. a string where a number belongs; unused flags
        raise RecipeError(str(e).splitlines()[0]) from None


def stage_arguments(stage):
    """A script name ('sft', 'verdict'), a script module or a tuple of dataclasses -> that stage's dataclasses."""
    if isinstance(stage, str):
        stage = script_module(stage)
    return tuple(getattr(stage, "ARGUMENTS", stage))


def load_recipe(stage, recipe=None, **overrides):
    """From Python (notebooks, tests): a stage's dataclasses from a YAML path or a dict, with keyword overrides.
    Values keep their Python types (lists of dicts, nested dicts); nothing goes through argv. An override replaces
    the recipe's value for that key."""
    types = stage_arguments(stage)
    if recipe is None:
        config = {}
    elif isinstance(recipe, Mapping):
        config = fill_placeholders(check_keys(recipe, types, "recipe"), {}, "recipe")
    else:
        config = check_config_file(str(recipe), types)
    overrides = fill_placeholders(check_keys(overrides, types, "override"), {}, "override")
    config = {**machine_defaults(types), **config, **overrides}
    _apply_env(config)
    try:
        return tuple(argument_parser(types).parse_dict(config))
    except TypeError as e:  # a required key is missing
        missing = str(e).split("missing", 1)[-1].strip()
        raise RecipeError(f"recipe: missing required key(s) {missing}") from None
    except ValueError as e:
        raise RecipeError(str(e).splitlines()[0]) from None


def check_choices(args, **allowed):
    """A recipe key that must be one of a few values (YAML values bypass argparse's choices): one-line error."""
    for key, values in allowed.items():
        if getattr(args, key) not in values:
            raise RecipeError(f"{key}: '{getattr(args, key)}' is not one of {', '.join(values)}")


def setup_logging():
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "lm_eval.api.task"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(main, parse_args):
    """Entry point of every stage script: parse, run, and turn a RecipeError into one line on stderr + exit 2."""
    setup_logging()
    try:
        main(*parse_args())
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run_plain(main):
    """Entry point of the argparse tools (run_recipe, sweep, scaling_law): a RecipeError is one line + exit 2."""
    setup_logging()
    try:
        main()
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
