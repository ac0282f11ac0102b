"""The corpus stage on real (tiny) runs: planted truth, accounting, invalid lines, resume after SIGKILL, dry runs."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.corpus.lsh_params import minhash_curve
from llm_recipes.scripts import corpus

DATA = os.path.join(REPO, "recipes", "tiny", "data")
TRUTH = json.load(open(os.path.join(DATA, "truth.json"), encoding="utf-8"))
TINY = os.path.join(REPO, "recipes", "tiny", "corpus.yaml")


def kept_docs(out):
    return {json.loads(line)["id"]: json.loads(line)["text"]
            for f in glob.glob(f"{out}/kept/*.jsonl") for line in open(f, encoding="utf-8")}


@pytest.fixture(scope="module")
def japanese_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ja") / "corpus"
    (args,) = load_recipe(corpus.ARGUMENTS, TINY, output_dir=str(out), languages=["ja"], exact_dedup=True,
                          sentence_dedup={})
    return out, corpus.main(args)


def test_japanese_recipe_against_planted_truth(japanese_run):
    out, report = japanese_run
    kept = kept_docs(out)
    assert report["read"] == report["kept"] + sum(report["removed"].values())
    assert not set(TRUTH["english"]) & set(kept), "English documents must go in a Japanese-only run"
    assert not set(TRUTH["spam"]) & set(kept) and not set(TRUTH["wrong_language"]) & set(kept)
    english = set(TRUTH["english"])  # duplicates of English pages are removed as English here
    family = {}  # original -> itself and all its planted copies; exactly one of each family must survive
    for kind in ("exact_duplicate", "near_duplicate"):
        for copy, orig in TRUTH[kind].items():
            family.setdefault(orig, {orig}).add(copy)
    one_kept = {orig: len(members & set(kept)) == 1 for orig, members in family.items() if orig not in english}
    removed = {rule: {json.loads(line)["id"] for f in glob.glob(f"{out}/removed/{rule}/*.jsonl") for line in open(f)}
               for rule in ("exact_dedup", "minhash_dedup")}
    order = [json.loads(line)["id"] for line in open(os.path.join(DATA, "docs.jsonl"), encoding="utf-8")]
    # the exact stage removes the later of each exact pair in file order; MinHash then sees only near-duplicates
    assert removed["exact_dedup"] == {max(pair, key=order.index) for pair in TRUTH["exact_duplicate"].items()
                                      if pair[1] not in english}
    assert removed["minhash_dedup"] <= set().union(*(family[o] for o in TRUTH["near_duplicate"].values()))
    exact = [one_kept[o] for o in TRUTH["exact_duplicate"].values() if o not in english]
    near = [one_kept[o] for o in TRUTH["near_duplicate"].values()]
    assert all(exact) and sum(near) / len(near) >= 0.95
    groups = set().union(*family.values())
    distinct_ja = [d for d in TRUTH["clean"] if d not in groups and d not in TRUTH["english"]]
    assert sum(d in kept for d in distinct_ja) / len(distinct_ja) >= 0.99
    for doc_id, pii in TRUTH["pii"].items():
        assert doc_id not in kept or not any(p in kept[doc_id] for p in pii)
    assert report["masked"]["email"] + report["masked"]["phone"] >= len(TRUTH["pii"]) - 2  # a PII doc may be a dup


def test_every_removal_is_auditable_and_reported(japanese_run):
    out, report = japanese_run
    assert {"exact_dedup", "minhash_dedup", "sentence_dedup"} <= set(report["removed"])
    for rule, n in report["removed"].items():
        files = glob.glob(f"{out}/removed/{rule}/*.jsonl")
        assert sum(1 for f in files for _ in open(f, encoding="utf-8")) == n, rule
    # sentence dedup: the kept documents it edited are audited with their original text, and lost text
    edited = [json.loads(line) for f in glob.glob(f"{out}/edited/sentence_dedup/*.jsonl") for line in open(f)]
    assert edited and len(edited) == report["stages"]["5_dedup_and_pii"]["edited"]
    assert all(len(e["text"]) < len(e["metadata"]["original_text"]) for e in edited)
    verify = report["minhash"]["verify"]
    assert report["minhash"]["buckets"] == 14 and report["minhash"]["hashes_per_bucket"] == 8  # chosen for 0.8
    assert 0 < verify["verified_pairs"] <= verify["comparisons"] <= verify["candidate_pairs"]
    assert "3c_minhash_verify" in (out / "report.md").read_text(encoding="utf-8")
    assert (out / "funnel.png").stat().st_size > 0 and (out / "minhash_scurve.png").stat().st_size > 0
    assert "| kept |" in (out / "report.md").read_text(encoding="utf-8")
    assert report["examples"]["language"]


def test_invalid_lines_are_counted_when_skipped(tmp_path):
    data = tmp_path / "in.jsonl"
    good = [json.loads(line) for line in open(os.path.join(DATA, "docs.jsonl"), encoding="utf-8")][:30]
    lines = [json.dumps(d, ensure_ascii=False).encode() for d in good]
    lines[3:3] = [b"{not json", b'{"id": "x", "text": ""}', b'{"id": "y"}', b'{"id": "z", "text": "\xff\xfe"}']
    data.write_bytes(b"\n".join(lines) + b"\n")
    (args,) = load_recipe(corpus.ARGUMENTS, TINY, input_path=str(data), output_dir=str(tmp_path / "out"),
                          on_invalid="skip")
    report = corpus.main(args)
    assert report["removed"]["invalid"] == 4 and report["read"] == 34
    assert report["read"] == report["kept"] + sum(report["removed"].values())
    invalid = [json.loads(line) for f in glob.glob(str(tmp_path / "out/removed/invalid/*.jsonl")) for line in open(f)]
    assert sorted(r["line"] for r in invalid) == [4, 5, 6, 7]


def split_input(tmp_path, n_files=4):
    docs = open(os.path.join(DATA, "docs.jsonl"), encoding="utf-8").read().splitlines()
    folder = tmp_path / "shards"
    folder.mkdir()
    for i in range(n_files):
        (folder / f"part{i}.jsonl").write_text("\n".join(docs[i::n_files]) + "\n", encoding="utf-8")
    return folder


def corpus_cmd(folder, out):
    return [sys.executable, os.path.join(REPO, "scripts", "corpus.py"), "--config", TINY, "--input_path", str(folder),
            "--output_dir", str(out), "--tasks", "4"]


def kill_after_first_task(cmd, marker, poll=0.05):
    """Start `cmd` and SIGKILL its whole process group (helpers included, as a crash would) once a task of the stage
    whose completion folder is `marker` has finished; returns how many of its tasks had completed."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (marker.exists() and any(marker.iterdir())):
        time.sleep(poll)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list(marker.iterdir()))


def test_sigkill_then_rerun_gives_the_same_kept_output(tmp_path):
    """Killed mid-way through filtering, then again mid-way through the MinHash verification (on, as in the tiny
    recipe): the final re-run still writes exactly the reference's kept documents."""
    folder = split_input(tmp_path)
    reference = subprocess.run(corpus_cmd(folder, tmp_path / "ref"), capture_output=True, text=True, cwd=REPO)
    assert reference.returncode == 0, reference.stderr[-2000:]
    logs = tmp_path / "killed" / "logs"
    completed_before = kill_after_first_task(corpus_cmd(folder, tmp_path / "killed"), logs / "1_filter" / "completions")
    assert not (tmp_path / "killed" / "report.json").exists()
    assert 1 <= completed_before < 4, "the kill should land mid-way through the filtering stage"
    verified = kill_after_first_task(corpus_cmd(folder, tmp_path / "killed"),
                                     logs / "3c_minhash_verify" / "completions", poll=0.005)
    assert not (tmp_path / "killed" / "report.json").exists()
    assert 1 <= verified < 14, "the second kill should land mid-way through the verification stage"
    rerun = subprocess.run(corpus_cmd(folder, tmp_path / "killed"), capture_output=True, text=True, cwd=REPO)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert kept_docs(tmp_path / "killed") == kept_docs(tmp_path / "ref")
    for name in ("ref", "killed"):
        ids = [json.loads(line)["id"] for f in glob.glob(str(tmp_path / name / "kept/*.jsonl")) for line in open(f)]
        assert len(ids) == len(set(ids))
    assert json.load(open(tmp_path / "killed" / "report.json"))["kept"] == len(kept_docs(tmp_path / "ref"))


def test_dry_run_reads_nothing_and_writes_sbatch_scripts(tmp_path):
    config = os.path.join(REPO, "recipes", "ja-web-fineweb2", "corpus.yaml")
    (args,) = load_recipe(corpus.ARGUMENTS, config, output_dir=str(tmp_path / "out"), dry_run=True)
    assert corpus.main(args) is None
    scripts = sorted(glob.glob(str(tmp_path / "out/logs/*/launch_script.slurm")))
    assert [os.path.basename(os.path.dirname(p)) for p in scripts] == [
        "1_filter", "3a_minhash_signatures", "3b_minhash_buckets", "3c_minhash_verify", "3d_minhash_clusters",
        "5_dedup_and_pii"]
    text = open(scripts[0]).read()
    assert "#SBATCH --partition=cpu" in text and "launch_pickled_pipeline" in text
    assert not (tmp_path / "out" / "kept").exists()


def test_minhash_s_curve():
    threshold, p = minhash_curve(14, 8)
    assert threshold == pytest.approx((1 / 14) ** (1 / 8))
    assert p[0.9] > 0.99 and p[0.7] < 0.6


def test_a_single_input_file_is_read_alone(tmp_path):
    """datatrove matches a plain file name as a suffix; the corpus stage must not pick up other_docs.jsonl."""
    good = open(os.path.join(DATA, "docs.jsonl"), encoding="utf-8").read().splitlines()
    (tmp_path / "docs.jsonl").write_text("\n".join(good[:20]) + "\n", encoding="utf-8")
    (tmp_path / "other_docs.jsonl").write_text("\n".join(good[20:40]) + "\n", encoding="utf-8")
    (args,) = load_recipe(corpus.ARGUMENTS, TINY, input_path=str(tmp_path / "docs.jsonl"),
                          output_dir=str(tmp_path / "out"))
    assert corpus.main(args)["read"] == 20


def test_ja_web_on_wikipedia_with_planted_duplicate_groups(tmp_path):
    """recipes/ja-web on the 1,159 real Wikipedia paragraphs with 200 planted near-duplicate groups (1-3 copies each,
    exact Jaccard >= the MinHash threshold, some before their original) plus spam, wrong-language and PII documents
    (benchmarks/bench_ja_web_planted.py, about 20 s): at most 2 groups lose every member, and only to the filters (a
    group with a member that passes them keeps one), >= 97 % of the other clean paragraphs are kept, planted noise goes
    and PII is masked."""
    bench = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_ja_web_planted.py"), "--out",
                            str(tmp_path)], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert bench.returncode == 0, bench.stderr[-3000:]
    figures = json.load(open(tmp_path / "figures.json", encoding="utf-8"))
    assert figures["accounting_ok"], (figures["read"], figures["kept"], figures["removed"])
    assert figures["groups"] == 200 and figures["groups_with_a_copy_before_the_original"] > 50
    assert figures["groups_lost"] <= 2, figures["lost_groups"]
    assert figures["groups_lost"] == figures["groups_lost_to_filters_only"], figures["lost_groups"]
    assert figures["pairs_collapsed"] >= 0.95
    assert figures["clean_kept_share"] >= 0.97, figures["clean_removed_by"]
    assert not figures["spam_kept"] and not figures["wrong_language_kept"]
    assert figures["pii_kept_and_masked"] == figures["pii"] and not figures["pii_leaked"]
