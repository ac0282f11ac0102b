"""Running stage scripts for recipes and sweeps: where a script or accelerate config is, the launch command, and
whether an output_dir already holds this exact run.

A stage's report.json (written last by the stage) means it completed; the runner then records in it the resolved
configuration it ran (`recipe_config`). A later run is skipped only when that record equals the new configuration;
otherwise it stops and names the keys that changed (`--force` re-runs), so a changed or copied recipe is never
mistaken for a finished one.
"""

import json
import os
import subprocess
import sys

from llm_recipes.config import walk
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import read_report, write_json_atomic
from llm_recipes.stage_scripts import REPO_ROOT, script_module, script_path  # noqa: F401  (re-exported)


def find_file(path, *folders):
    """A relative path as given (from the working directory), else under each folder in turn, else the checkout."""
    for folder in ("", *folders, REPO_ROOT):
        candidate = os.path.join(folder, path)
        if os.path.isfile(candidate):
            return candidate
    raise RecipeError(f"{path}: file not found (looked in the working directory, {', '.join(folders)}, {REPO_ROOT})")


def launch(script, config_path, launcher="accelerate", accelerate_config=None, env=None):
    """Run one stage as its own process; returns the exit code."""
    if launcher == "accelerate":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config, script]
    else:
        cmd = [sys.executable, script]
    print(f"$ {' '.join(cmd[2:] if launcher == 'accelerate' else cmd[1:])} --config {config_path}", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "HF_DATASETS_OFFLINE": os.environ.get("HF_DATASETS_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
           **(env or {})}
    return subprocess.call([*cmd, "--config", config_path], env=env)


def _plain(value, root=None):
    """JSON values, with paths under `root` (the run_dir) written as {run_dir}/..., so a moved run_dir still holds
    the same run."""
    def leaf(v):
        if isinstance(v, str) and root and (v == root or v.startswith(root.rstrip("/") + "/")):
            return "{run_dir}" + v[len(root.rstrip("/")):]
        return json.loads(json.dumps(v, default=str))
    return walk(value, leaf)


def _strings(value):
    """Every string in a configuration (lists and dicts included)."""
    found = []
    walk(value, lambda v: found.append(v) if isinstance(v, str) else None)
    return found


def input_fingerprints(config, limit=64 << 20):
    """sha256 of every local file the configuration names (files up to 64 MB; larger: size and mtime), so data
    edited in place makes a finished stage stale. Folders (previous stages' outputs) are covered by their stages."""
    import hashlib

    prints = {}
    for path in sorted(set(_strings(config))):
        if len(path) < 4096 and os.path.isfile(path):
            size = os.path.getsize(path)
            if size > limit:
                prints[path] = f"size={size},mtime={os.path.getmtime(path)}"
            else:
                with open(path, "rb") as f:
                    prints[path] = hashlib.sha256(f.read()).hexdigest()[:16]
    return prints


def _record(config, root):
    return {**_plain(config, root), "input_files_sha256": {_plain(k, root): v for k, v in
                                                       input_fingerprints(config).items()}}


def changed_keys(old, new):
    return sorted(k for k in set(old) | set(new) if old.get(k, "<unset>") != new.get(k, "<unset>"))


def completed(output_dir, config, force=False, where="stage", root=None):
    """The stage's report if output_dir holds a completed run of exactly `config`; None if it must run. A completed
    run of another configuration stops with the changed keys named, unless `force`."""
    report = read_report(output_dir)
    if report is None or force:
        return None
    recorded, config = report.get("recipe_config"), _record(config, root)
    if recorded == config:
        return report
    if recorded is None:
        raise RecipeError(f"{where}: {output_dir} holds a run that was not started by this recipe (its report.json "
                          "records no configuration); use --force to re-run it or choose another run_dir")
    keys = changed_keys(recorded, config)
    shown = ", ".join(f"{k}: {recorded.get(k, '<unset>')!r} -> {config.get(k, '<unset>')!r}" for k in keys[:4])
    raise RecipeError(f"{where}: {output_dir} holds a completed run of another configuration ({len(keys)} key(s) "
                      f"changed: {shown}{', ...' if len(keys) > 4 else ''}); use --force to re-run it or choose "
                      f"another run_dir")


def record_config(output_dir, config, root=None):
    """After a stage exits 0: its report.json must exist, and now records the configuration it ran."""
    report = read_report(output_dir)
    if report is None:
        raise RecipeError(f"{output_dir}: the stage exited 0 but wrote no report.json")
    report["recipe_config"] = _record(config, root)
    write_json_atomic(os.path.join(output_dir, "report.json"), report)
    return report


def git_commit():
    """The checkout's commit (with `-dirty` when tracked files differ from it), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None
