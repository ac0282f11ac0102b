"""Slow checks of the ways users really run things (`make test-slow`, run by CI too): datatrove's Slurm executor
through a stand-in sbatch/srun/scontrol that runs every job script as a cluster would, a real local Ray instance, 2-process
FSDP training killed and resumed, evaluation at real benchmark size, and the notebook executed headless."""
import glob
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, kill_when, run_script

pytestmark = pytest.mark.slow

TINY_CORPUS = os.path.join(REPO, "recipes", "tiny", "corpus.yaml")
JCQA = os.path.join(REPO, "data", "jglue-v1.3", "jcommonsenseqa-train-v1.3.json")

SBATCH = r'''#!{python}
"""Stand-in sbatch: runs the job script now, one fresh bash per array index, as Slurm would run it on a node: the
submit directory, the exported environment (--export=ALL,K=V), and the variables Slurm sets in a job
(SLURM_ARRAY_TASK_ID, SLURM_JOB_ID, SLURM_NODELIST, ...). A job whose
afterok dependency failed does not run. Prints "Submitted batch job N" like sbatch."""
import os, re, subprocess, sys
state = os.environ["FAKE_SLURM_STATE"]
os.makedirs(state, exist_ok=True)
job_id = len(os.listdir(state)) + 1
*options, script = sys.argv[1:]
text = open(script).read()
env = dict(os.environ)
for option in options:
    if option.startswith("--export="):
        env.update(kv.split("=", 1) for kv in option[len("--export="):].split(",")[1:])
failed = lambda j: open(os.path.join(state, str(j))).read().strip() != "ok"
deps = [int(d) for o in options if o.startswith("--dependency=") for d in re.findall(r"afterok:(\d+)", o)]
status = "ok"
if any(failed(d) for d in deps):
    status = "dependency never satisfied"
else:
    low, high = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)", text).groups()) if "--array" in text else (0, 0)
    for index in range(low, high + 1):
        run = subprocess.run(["bash", script], env={{**env, "SLURM_ARRAY_TASK_ID": str(index),
                             "SLURM_JOB_ID": str(job_id), "SLURM_ARRAY_JOB_ID": str(job_id),
                             "SLURM_NODELIST": "node-1", "SLURM_JOB_NODELIST": "node-1", "SLURM_NNODES": "1",
                             "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_SUBMIT_DIR": os.getcwd()}})
        if run.returncode:
            status = f"array task {{index}} exited {{run.returncode}}"
open(os.path.join(state, str(job_id)), "w").write(status)
print(f"Submitted batch job {{job_id}}")
'''
SRUN = r'''#!/bin/bash
# Stand-in srun: drop srun's options and run the command (one task per array index).
while [[ $# -gt 0 && "$1" == -* ]]; do
  case "$1" in -n|-N|--ntasks|--nodes) shift 2 ;; *) shift ;; esac
done
exec "$@"
'''
SCONTROL = r'''#!/bin/bash
# Stand-in scontrol: `scontrol show hostnames LIST` prints one host per line (a plain comma list here).
[[ "$1 $2" == "show hostnames" ]] && tr ',' '\n' <<< "$3"
'''


def kept(out):
    return sorted(line for f in glob.glob(f"{out}/kept/*.jsonl") for line in open(f, encoding="utf-8"))


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "corpus"
    result = run_script("scripts/corpus.py", "--config", TINY_CORPUS, "--output_dir", str(out), "--tasks", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_slurm_executor_runs_for_real_through_stand_in_sbatch(local_reference, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH.format(python=sys.executable))
    (bin_dir / "srun").write_text(SRUN)
    (bin_dir / "scontrol").write_text(SCONTROL)
    for tool in ("sbatch", "srun", "scontrol"):
        os.chmod(bin_dir / tool, 0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # workers import llm_recipes by package name
    env.update(PATH=f"{bin_dir}:{os.path.dirname(sys.executable)}:{env['PATH']}", FAKE_SLURM_STATE=str(tmp_path / "jobs"))
    out = tmp_path / "slurm"
    cmd = [sys.executable, os.path.join(REPO, "scripts", "corpus.py"), "--config", TINY_CORPUS, "--output_dir", str(out),
           "--tasks", "2", "--executor", "slurm"]
    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stderr[-3000:]
    jobs = {int(p): open(tmp_path / "jobs" / p).read() for p in os.listdir(tmp_path / "jobs")}
    assert len(jobs) >= 5 and all(status == "ok" for status in jobs.values()), jobs
    assert kept(out) == kept(local_reference) and len(kept(out)) > 100
    report = json.load(open(out / "report.json"))  # every job ran synchronously: the first call already reports
    assert report["read"] == report["kept"] + sum(report["removed"].values())
    os.remove(out / "report.json")
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(os.listdir(tmp_path / "jobs")) == len(jobs)  # nothing was submitted again: every rank was complete
    assert json.load(open(out / "report.json"))["kept"] == report["kept"]


def test_ray_executor_on_a_local_instance_keeps_what_local_keeps(local_reference, tmp_path):
    pytest.importorskip("ray", reason="pip install -r requirements-ray.txt (CI installs it)")
    out = tmp_path / "ray"
    result = run_script("scripts/corpus.py", "--config", TINY_CORPUS, "--output_dir", str(out), "--tasks", "2",
                        "--executor", "ray", timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert kept(out) == kept(local_reference)
    report = json.load(open(out / "report.json"))
    assert report["read"] == report["kept"] + sum(report["removed"].values())


def logged_losses(checkpoint):
    state = json.load(open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8"))
    return [(e["step"], e["loss"]) for e in state["log_history"] if "loss" in e]


def test_fsdp_two_processes_killed_and_resumed_match_an_uninterrupted_run(tmp_path):
    """configs/fsdp.yaml (FSDP2, the config users take to GPUs) with two CPU processes (gloo)."""
    from conftest import tiny_tokenizer_dir

    tok = tiny_tokenizer_dir(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(out):
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                os.path.join(REPO, "configs", "fsdp.yaml"), "--num_processes", "2", "--mixed_precision", "no",
                os.path.join(REPO, "scripts", "pretrain.py"), "--config", os.path.join(REPO, "recipes", "tiny",
                                                                                       "pretrain.yaml"),
                "--dataset_name", os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl"),
                "--tokenizer_name_or_path", str(tok), "--output_dir", str(out), "--hidden_size", "64",
                "--intermediate_size", "128", "--num_hidden_layers", "2", "--max_steps", "24", "--save_steps", "8",
                "--save_total_limit", "5", "--logging_steps", "1", "--per_device_train_batch_size", "4",
                "--report_to", "none"]

    reference = subprocess.run(cmd(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=900)
    assert reference.returncode == 0, reference.stderr[-3000:]
    kill_when(cmd(tmp_path / "killed"), tmp_path / "killed" / "checkpoint-8" / "trainer_state.json", env)
    assert not (tmp_path / "killed" / "checkpoint-24").exists(), "the kill came too late to test a resume"
    resumed = subprocess.run(cmd(tmp_path / "killed"), env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.load(open(tmp_path / "killed" / "report.json"))
    assert report["resumed_from"] and report["world_size"] == 2
    ref, res = logged_losses(tmp_path / "ref" / "checkpoint-24"), logged_losses(tmp_path / "killed" / "checkpoint-24")
    assert [s for s, _ in res] == list(range(1, 25))
    assert [loss for _, loss in ref] == pytest.approx([loss for _, loss in res], rel=1e-5)
    check = subprocess.run([sys.executable, "-c", "import sys; from transformers import AutoModelForCausalLM; "
                            "m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); print(m.num_parameters())",
                            str(tmp_path / "killed")], capture_output=True, text=True, env=env)
    assert check.returncode == 0 and int(check.stdout) > 0, check.stderr[-2000:]


def test_evaluation_of_all_8939_jcommonsenseqa_questions(model_dir, tmp_path):
    """Real benchmark size through lm-eval (the official train split as an evaluation file), count and p-value."""
    from llm_recipes.config import load_recipe
    from llm_recipes.scripts import evaluation

    args = load_recipe("evaluation", {"model_name_or_path": [str(model_dir)], "tasks": ["jcommonsenseqa_local"],
                                      "task_data": {"jcommonsenseqa_local": JCQA}, "output_dir": str(tmp_path),
                                      "batch_size": 64})
    report = evaluation.main(*args)
    score = report["scores"]["model"]["jcommonsenseqa_local"]
    assert score["n"] == score["n_in_file"] == 8939
    assert 0 <= score["p_value"] <= 1 and score["interval_95"][0] <= score["score"] <= score["interval_95"][1]


def test_notebook_runs_headless_and_matches_the_demo(tmp_path):
    """notebooks/tiny_pipeline.ipynb, executed with nbclient, gives the same summary lines as `make demo`."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(os.path.join(REPO, "notebooks", "tiny_pipeline.ipynb"), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    os.environ["RUN_DIR"] = str(tmp_path / "notebook")
    try:
        NotebookClient(nb, timeout=2400, kernel_name="python3",
                       resources={"metadata": {"path": os.path.join(REPO, "notebooks")}}).execute()
    finally:
        del os.environ["RUN_DIR"]
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # corpus funnel + three loss curves
    demo = run_script("scripts/run_recipe.py", "recipes/tiny", "--run_dir", str(tmp_path / "demo"), timeout=1200)
    assert demo.returncode == 0, demo.stderr[-3000:]

    def lines(path):
        rows = [r.split("|") for r in open(path, encoding="utf-8").read().splitlines()[2:]]
        return {r[1].strip(): r[-2].strip() for r in rows}

    notebook, made = lines(tmp_path / "notebook" / "notebook_summary.md"), lines(tmp_path / "demo" / "summary.md")
    assert notebook.keys() == made.keys() and len(made) == 6
    for stage in made:
        assert notebook[stage] == made[stage], stage


def test_japanese_web_recipe_keeps_clean_wikipedia_text_and_still_removes_planted_noise(tmp_path):
    """recipes/ja-web: ≥ 97 % of 1,159 clean Wikipedia paragraphs and of the 59 articles they form are kept (the
    benchmark prints the per-rule table); on the tiny corpus, planted spam, wrong-language text and duplicates go."""
    bench = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_filters_clean_text.py"), "--out",
                            str(tmp_path / "clean")], capture_output=True, text=True, timeout=900)
    assert bench.returncode == 0, bench.stderr[-3000:]
    for unit in ("paragraphs", "articles"):
        report = json.load(open(tmp_path / "clean" / unit / "report.json"))
        assert report["read"] == report["kept"] + sum(report["removed"].values())
        assert report["kept"] / report["read"] >= 0.97, (unit, report["removed"])
    out = tmp_path / "tiny"
    result = run_script("scripts/corpus.py", "--config", os.path.join(REPO, "recipes", "ja-web", "corpus.yaml"),
                        "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    truth = json.load(open(os.path.join(REPO, "recipes", "tiny", "data", "truth.json"), encoding="utf-8"))
    kept_ids = {json.loads(line)["id"] for line in kept(out)}
    for kind in ("spam", "wrong_language", "english"):
        assert not set(truth[kind]) & kept_ids, kind
    for kind in ("exact_duplicate", "near_duplicate"):
        assert not [c for c, orig in truth[kind].items() if c in kept_ids and orig in kept_ids], kind
