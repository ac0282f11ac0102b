"""Japanese evaluation suite: the leaderboard tasks render exactly as lm-eval's own, every released format is read and
a wrong one is a file:line error, batch-size invariance, provenance, chat template on/off and cost."""
import hashlib
import json
import os

import pytest
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation import TASK_DIR
from llm_recipes.evaluation.tasks import expand_tasks, resolve_tasks
from llm_recipes.scripts import evaluation as stage

SUITE = os.path.join(REPO, "recipes", "eval-ja-suite", "evaluate.yaml")
LEADERBOARD = expand_tasks(TASK_DIR, ["ja_leaderboard_local"])


def suite_task_data():
    return load_recipe("evaluation", SUITE, model_name_or_path=["unused"])[0].task_data


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    tasks = expand_tasks(TASK_DIR, ["ja_leaderboard_local", "llm_jp_eval_local"])
    return out, tasks, resolve_tasks(TASK_DIR, tasks, suite_task_data(), str(out))


def test_every_task_reads_its_released_format(resolved):
    out, tasks, (variants, counts, chance, _, provenance) = resolved
    assert len(LEADERBOARD) == 8 and len(tasks) == 16
    expected = {"ja_leaderboard_jsquad_local": 4, "ja_leaderboard_mgsm_local": 4, "jmmlu_llmjp": 6, "niilc_llmjp": 4,
                "jemhopqa_llmjp": 3, "wmt20_en_ja_llmjp": 4, "xlsum_ja_llmjp": 3, "jhumaneval_llmjp": 3}
    for task, n in expected.items():
        assert counts[task] == n, task
    jnli = [json.loads(line) for line in open(out / "ja_leaderboard_jnli_local.validation.jsonl")]
    assert {r["label"] for r in jnli} == {0, 1, 2}  # JGLUE's strings become the hub's ClassLabel ids
    niilc = [json.loads(line) for line in open(out / "niilc_llmjp.test.jsonl")]
    assert niilc[0]["answers"] == ["東京", "東京都", "東京,東京都"] and niilc[2]["question"] == "「坊っちゃん」の作者は？"
    wmt = [json.loads(line) for line in open(out / "wmt20_en_ja_llmjp.test.jsonl")]
    assert wmt[0] == {"source": "The new station opened on Monday.", "reference": "新しい駅が月曜日に開業した。"}
    src = provenance["jmmlu_llmjp"]["files"]["test"][0]
    assert src["sha256"] == hashlib.sha256(open(src["path"], "rb").read()).hexdigest()
    assert chance["jmmlu_llmjp"] == 0.25


def _local_rows(out):
    """The hub datasets replaced by the same local rows: lm-eval's own task objects load these instead."""
    import datasets

    def download(self, dataset_kwargs=None, **kwargs):
        ours = f"{self.config.task}_local"
        files = {s: str(out / f"{ours}.{s}.jsonl") for s in ("train", "validation", "test")
                 if (out / f"{ours}.{s}.jsonl").exists()}
        self.dataset = datasets.load_dataset("json", data_files=files)
    return download


def test_leaderboard_tasks_render_as_lm_evals_own(resolved, monkeypatch):
    """Must hold 1: prompt (with few-shot examples), choices, target and settings identical to lm-eval's installed
    ja_leaderboard_* task objects given the same documents."""
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager

    out = resolved[0]
    ours = TaskManager(include_path=str(out), include_defaults=False).load(LEADERBOARD)["tasks"]
    monkeypatch.setattr(ConfigurableTask, "download", _local_rows(out))
    upstream_dir = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "japanese_leaderboard")
    theirs = TaskManager(include_path=upstream_dir, include_defaults=False).load(
        [t.removesuffix("_local") for t in LEADERBOARD])["tasks"]
    for name in LEADERBOARD:
        a, b = ours[name], theirs[name.removesuffix("_local")]
        assert a.config.dataset_path == "json" and b.config.dataset_path != "json"
        for key in ("description", "num_fewshot", "fewshot_split", "target_delimiter", "fewshot_delimiter",
                    "output_type", "generation_kwargs", "filter_list", "test_split", "validation_split"):
            assert getattr(a.config, key) == getattr(b.config, key), (name, key)
        assert [m["metric"] for m in a.config.metric_list] == [m["metric"] for m in b.config.metric_list]
        assert list(a.eval_docs) == list(b.eval_docs)
        a.set_fewshot_seed(1234)
        b.set_fewshot_seed(1234)
        for doc in a.eval_docs:
            assert a.doc_to_text(doc) == b.doc_to_text(doc) and a.doc_to_target(doc) == b.doc_to_target(doc)
            if a.config.doc_to_choice is not None:
                assert a.doc_to_choice(doc) == b.doc_to_choice(doc)
            shots = a.config.num_fewshot or 0
            assert a.fewshot_context(doc, shots) == b.fewshot_context(doc, shots), name
    prompt = ours["ja_leaderboard_jnli_local"].fewshot_context(ours["ja_leaderboard_jnli_local"].eval_docs[0], 3)
    assert prompt.startswith("以下は、タスクを説明する指示と") and prompt.count("### 応答：") == 4  # 3 shots + the doc


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_wrong_formats_are_one_line_errors_naming_file_and_line(tmp_path):
    data = os.path.join(REPO, "recipes", "eval-ja-suite", "data")
    cases = {
        "jmmlu_llmjp": ({"test": _write(tmp_path / "s.csv", '"q","a","b","c","d","A"\n"q2","a","b","c","D"\n')},
                        r"s\.csv:2: expected 6 columns"),
        "niilc_llmjp": ({"test": _write(tmp_path / "n.xml", "<questions>\n<question id=\"x\">\n<text>問</text>\n"
                                        "<answers></answers>\n</question>\n</questions>\n")},
                        r"n\.xml:2: question 'x' needs <text> and at least one <answer>"),
        "mgsm_ja_llmjp": ({"test": _write(tmp_path / "m.tsv", "問1\t3\n問2\tみっつ\n")},
                          r"m\.tsv:2: answer_number 'みっつ' is not an integer"),
        "jemhopqa_llmjp": ({"test": _write(tmp_path / "j.json", '[\n  {"question": "q", "answer": "a"},\n'
                                           '  {"question": "q2"}\n]\n')}, r"j\.json:3: record has no 'answer'"),
        "ja_leaderboard_jnli_local": ({"validation": _write(tmp_path / "jnli.json", json.dumps(
            {"sentence1": "a", "sentence2": "b", "label": "maybe"}) + "\n")}, r"jnli\.json:1: label 'maybe'"),
        "ja_leaderboard_jaqket_v2_local": ({"validation": _write(tmp_path / "jq.jsonl", json.dumps(
            {"question": "q", "answers": {"text": ["a"]}, "ctxs": [{"text": "c"}]}) + "\n")},
            r"jq\.jsonl:1: 'ctxs' must be"),
        "wmt20_en_ja_llmjp": ({"test": {"source": os.path.join(data, "wmt20", "newstest2020-enja-src.en.sgm"),
                                        "reference": _write(tmp_path / "ref.ja", "一\n二\n")}},
                              r"ref\.ja: 2 segments, but its pair has more \(first unpaired at line 6\)"),
        "xlsum_ja_llmjp": ({"test": _write(tmp_path / "x.jsonl", '{"text": "t", "summary": "s"}\n{"text": "t"}\n')},
                           r"x\.jsonl:2: record has no 'summary'"),
    }
    for task, (files, pattern) in cases.items():
        with pytest.raises(RecipeError, match=pattern) as e:
            resolve_tasks(TASK_DIR, [task], {task: files}, str(tmp_path / "out"), num_fewshot=0)
        assert "\n" not in str(e.value), task
    with pytest.raises(RecipeError, match="needs a 'train' file"):  # the leaderboard's 3 shots need a train split
        resolve_tasks(TASK_DIR, ["ja_leaderboard_marc_ja_local"], {"ja_leaderboard_marc_ja_local": os.path.join(
            REPO, "recipes", "eval-jglue", "data", "marc_ja-valid.json")}, str(tmp_path / "out"))


def test_loglikelihoods_and_greedy_generations_do_not_depend_on_batch_size(model_dir):
    """Must hold 3: log-likelihoods at batch size 1 and 16 agree within 1e-5 and greedy generations are identical."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    rows = [json.loads(line) for line in open(os.path.join(REPO, "recipes", "eval-jglue", "data",
                                                           "jcommonsenseqa-valid-v1.3.json"), encoding="utf-8")]
    contexts = [f"質問:{r['question']}\n答え:" * (1 + i % 3) for i, r in enumerate(rows)]  # varied lengths: padding
    scored = [Instance("loglikelihood", {}, (c, r[f"choice{k}"]), i * 5 + k)
              for i, (c, r) in enumerate(zip(contexts, rows)) for k in range(5)]
    generated = [Instance("generate_until", {}, (c, {"until": ["\n\n"], "max_gen_toks": 12, "do_sample": False}), i)
                 for i, c in enumerate(contexts)]
    results = {}
    for batch_size in (1, 16):
        lm = HFLM(pretrained=str(model_dir), batch_size=batch_size, device="cpu", dtype="float32")
        results[batch_size] = ([ll for ll, _ in lm.loglikelihood(scored, disable_tqdm=True)],
                               lm.generate_until(generated, disable_tqdm=True))
    assert len(results[1][0]) == 40 and max(abs(a - b) for a, b in zip(results[1][0], results[16][0])) < 1e-5
    assert results[1][1] == results[16][1] and any(results[1][1])


def test_chat_template_on_and_off_with_provenance_and_cost(model_dir, tmp_path):
    task_data = suite_task_data()
    tasks = ["ja_leaderboard_jcommonsenseqa_local", "jemhopqa_llmjp"]
    report = stage.main(*load_recipe("evaluation", {
        "model_name_or_path": [str(model_dir)], "tasks": tasks, "task_data": {t: task_data[t] for t in tasks},
        "output_dir": str(tmp_path), "apply_chat_template": "both", "limit": 3}))
    assert set(report["scores"]) == {"model", "model+chat"}
    for label, chat in (("model", False), ("model+chat", True)):
        s = report["scores"][label]["ja_leaderboard_jcommonsenseqa_local"]
        p = s["provenance"]
        assert p["chat_template"] is chat and p["fewshot_seed"] == 1234 and p["num_fewshot"] == 3
        assert p["lm_eval_version"] == "0.4.13" and p["prompt"]["doc_to_text"].startswith("### 指示：\n出力は以下から")
        for split, files in p["data"]["files"].items():
            assert files[0]["sha256"] == hashlib.sha256(open(files[0]["path"], "rb").read()).hexdigest()
        assert s["n"] == 3 and s["n_in_file"] == 8 and 0 <= s["score"] <= 1
        cost = report["cost"][label]
        assert cost["examples"] == 3 + 3 and cost["tokens"] > 0 and cost["examples_per_s"] > 0 < cost["tokens_per_s"]
        contexts = [json.loads(line)["context"] for line in open(tmp_path / f"samples_{label}.jsonl")]
        assert all(("<|im_start|>" in c) is chat for c in contexts)
    table = (tmp_path / "categories.md").read_text()
    assert "| category | task | metric | examples | chance | model | model+chat |" in table
    assert "| QA | jemhopqa_llmjp | exact_match | 3 |" in table and "tokens/s" in table


@pytest.mark.slow
def test_whole_suite_runs_offline_with_chat_on_and_off(model_dir, tmp_path):
    """Every task of recipes/eval-ja-suite on the tiny model, chat template off and on, one grouped table."""
    report = stage.main(*load_recipe("evaluation", SUITE, model_name_or_path=[str(model_dir)],
                                     output_dir=str(tmp_path), apply_chat_template="both"))
    assert len(report["tasks"]) == 16
    for label in ("model", "model+chat"):
        assert all(0 <= report["scores"][label][t]["score"] <= 100 for t in report["tasks"])
    table = (tmp_path / "categories.md").read_text()
    assert all(f"| {t} |" in table for t in report["tasks"]) and "| CG (code) | jhumaneval_llmjp | pass@1 | 3 |" in table


def test_llm_jp_eval_metrics_by_hand():
    """The task metrics on hand-checkable inputs (utils.py is what the task YAMLs call)."""
    from llm_recipes.evaluation.lm_eval_tasks import utils

    qa = utils.llmjp_qa({"answers": ["東京", "東京都"]}, ["東京都\n\n余計な説明"])
    assert qa == {"exact_match": 1.0, "char_f1": 1.0}
    partial = utils.llmjp_qa({"answers": ["夏目漱石"]}, ["夏目"])["char_f1"]
    assert partial == pytest.approx(2 * 2 / (2 + 4))  # token_sort_ratio: normalised Indel similarity of 2 and 4 chars
    assert utils.final_number("答えは1,234個です。つまり1234") == 1234 and utils.final_number("なし") is None
    assert utils.final_number_match({"answer_number": 13}, ["8 + 5 = 13"]) == {"exact_match": 1.0}
    assert utils.rouge2_ja([("今日は良い天気です。", "今日は良い天気です。")]) == pytest.approx(1.0)
    assert utils.rouge2_ja([("今日は良い天気です。", "猫が走る")]) == 0.0
    assert utils.bleu_ja([("今日は良い天気です。", "今日は良い天気です。")]) == pytest.approx(100.0)
    assert utils.bleu_en([("The cat sat on the mat.", "The cat sat on the mat.")]) == pytest.approx(100.0)
    assert 0 < utils.chrf([("The cat sat on the mat.", "The cat sat.")]) < 100
    problem = [json.loads(line) for line in open(os.path.join(REPO, "recipes", "eval-ja-suite", "data", "jhumaneval",
                                                              "jhumaneval.jsonl"), encoding="utf-8")][0]
    assert utils.humaneval_pass(problem, [problem["canonical_solution"]]) == {"pass@1": 1.0}
    assert utils.humaneval_pass(problem, ["    return a - b\n"]) == {"pass@1": 0.0}
