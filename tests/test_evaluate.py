"""Evaluation: local JGLUE-format files, scores checked against transformers, checkpoint sweeps, the pairwise judge,
pass@k and its sandbox, and bad task files."""
import json
import os
import shutil

import pytest
from conftest import REPO

from llm_recipes.errors import RecipeError
from llm_recipes.evaluation.code_eval import humaneval_program, pass_at_k, run_sandboxed
from llm_recipes.scripts import evaluation as stage
from llm_recipes.scripts import judge as judge_stage

DATA = os.path.join(REPO, "recipes", "eval-jglue", "data")
TASK_DATA = {
    "jcommonsenseqa_local": {"validation": f"{DATA}/jcommonsenseqa-valid-v1.3.json",
                             "train": f"{DATA}/jcommonsenseqa-train-v1.3.json"},
    "jnli_local": {"validation": f"{DATA}/jnli-valid-v1.3.json", "train": f"{DATA}/jnli-train-v1.3.json"},
    "jsquad_local": f"{DATA}/jsquad-valid-v1.3.json",
    "marc_ja_local": f"{DATA}/marc_ja-valid.json",
    "niilc_local": f"{DATA}/niilc-valid.jsonl",
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llm_recipes.scripts import tokenizer as tok_stage

    root = tmp_path_factory.mktemp("evalmodel")
    tok_stage.main(tok_stage.TokenizerArguments(input_path=os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl"),
                                                output_dir=str(root / "run"), vocab_size=500))
    tok = AutoTokenizer.from_pretrained(root / "run")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, eos_token_id=tok.eos_token_id))
    model.save_pretrained(root / "run")
    for step in (10, 20):  # Trainer-style checkpoints without their own tokenizer
        torch.manual_seed(step)
        LlamaForCausalLM(model.config).save_pretrained(root / "run" / f"checkpoint-{step}")
    return root / "run"


def test_every_example_of_each_official_format_file_is_scored(model, tmp_path):
    report = stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=list(TASK_DATA),
                                                task_data=TASK_DATA, output_dir=str(tmp_path),
                                                contextual_calibration=True))  # off unless asked (2x the work)
    scores = report["scores"]["run"]
    expected = {"jcommonsenseqa_local": 8, "jnli_local": 6, "jsquad_local": 4, "marc_ja_local": 4, "niilc_local": 4}
    for task, n in expected.items():
        assert scores[task]["n"] == scores[task]["n_in_file"] == n, task
    assert scores["jnli_local"]["chance"] == pytest.approx(1 / 3) and scores["jsquad_local"]["metric"] == "exact_match"
    assert "char_f1" in scores["niilc_local"]
    for task in ("jcommonsenseqa_local", "jnli_local", "marc_ja_local"):
        assert 0 <= scores[task]["contextual_calibrated_acc"] <= 1 and 0 <= scores[task]["batch_calibrated_acc"] <= 1
    assert (tmp_path / "leaderboard.md").read_text().count("| run |") == 5


def test_few_shot_examples_come_from_the_train_file(model, tmp_path):
    tasks = ["jcommonsenseqa_local", "jnli_local"]
    stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=tasks, num_fewshot=2,
                                       task_data={t: TASK_DATA[t] for t in tasks}, output_dir=str(tmp_path)))
    train = [json.loads(line)["question"] for line in open(TASK_DATA["jcommonsenseqa_local"]["train"])]
    valid = [json.loads(line)["question"] for line in open(TASK_DATA["jcommonsenseqa_local"]["validation"])]
    samples = [s for s in map(json.loads, open(tmp_path / "samples_run.jsonl")) if s["task"] == "jcommonsenseqa_local"]
    for s in samples:
        assert sum(q in s["context"] for q in train) == 2
        assert sum(q in s["context"] for q in valid) == 1  # only the evaluated question itself
    again = tmp_path / "again"
    stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=tasks, num_fewshot=2,
                                       task_data={t: TASK_DATA[t] for t in tasks}, output_dir=str(again)))
    assert open(again / "samples_run.jsonl").read() == open(tmp_path / "samples_run.jsonl").read()  # fixed seed


def test_multiple_choice_argmax_matches_transformers_loglikelihoods(model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task_data = {"jcommonsenseqa_local": TASK_DATA["jcommonsenseqa_local"]["validation"]}
    stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=["jcommonsenseqa_local"],
                                       task_data=task_data, output_dir=str(tmp_path), dtype="float32"))
    samples = [json.loads(line) for line in open(tmp_path / "samples_run.jsonl", encoding="utf-8")]
    samples = [s for s in samples if s["task"] == "jcommonsenseqa_local"]
    tok, lm = AutoTokenizer.from_pretrained(model), AutoModelForCausalLM.from_pretrained(model).eval()
    rows = [json.loads(line) for line in open(task_data["jcommonsenseqa_local"], encoding="utf-8")]
    assert len(samples) == len(rows)
    for sample in samples:
        doc = rows[sample["doc_id"]]
        context = f"質問:{doc['question']}\n答え:"
        ours = []
        for i in range(5):
            ctx = tok(context, add_special_tokens=False)["input_ids"]
            full = tok(context + doc[f"choice{i}"], add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logprobs = lm(torch.tensor([full])).logits.log_softmax(-1)[0]
            ours.append(sum(logprobs[t - 1, full[t]].item() for t in range(len(ctx), len(full))))
        theirs = [float(x) for x in sample["scores"]]
        assert max(range(5), key=ours.__getitem__) == max(range(5), key=theirs.__getitem__)
        assert ours == pytest.approx(theirs, abs=1e-3)


def test_checkpoint_sweep_writes_score_vs_step_plot_and_leaderboard(model, tmp_path):
    task_data = {"jcommonsenseqa_local": TASK_DATA["jcommonsenseqa_local"]["validation"]}
    report = stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=["jcommonsenseqa_local"],
                                                task_data=task_data, output_dir=str(tmp_path), checkpoints=True))
    assert set(report["scores"]) == {"run@10", "run@20"}
    assert (tmp_path / "score_vs_step.png").stat().st_size > 0
    assert "run@20" in (tmp_path / "leaderboard.md").read_text()


def test_prompt_variance_and_choice_permutations(model, tmp_path):
    task_data = {"jcommonsenseqa_local": TASK_DATA["jcommonsenseqa_local"]["validation"]}
    report = stage.main(stage.EvaluateArguments(
        model_name_or_path=[str(model)], tasks=["jcommonsenseqa_local"], task_data=task_data, output_dir=str(tmp_path),
        prompt_templates={"jcommonsenseqa_local": ["問題:{{question}}\n答え:"]}, choice_permutations=2))
    s = report["scores"]["run"]["jcommonsenseqa_local"]
    assert s["variants"] == 6 and s["min"] <= s["mean"] <= s["max"] and s["std"] >= 0
    permuted = [json.loads(line) for line in open(tmp_path / "tasks" / "jcommonsenseqa_local.perm0.jsonl")]
    original = [json.loads(line) for line in open(task_data["jcommonsenseqa_local"])]
    for p, o in zip(permuted, original):  # the answer follows its text
        assert p[f"choice{p['label']}"] == o[f"choice{o['label']}"]


def test_calibrations_remove_a_constant_label_preference():
    from llm_recipes.evaluation.results import batch_calibrated_acc, contextually_calibrated_acc

    # the model prefers choice 0 by +5 everywhere; under that bias its content signal (+1 on the gold) is hidden
    samples, free = [], []
    for i in range(6):
        gold = i % 3
        scores = [5.0 + (1.0 if k == gold else 0.0) if k == 0 else (1.0 if k == gold else 0.0) for k in range(3)]
        samples.append({"doc_id": i, "target": gold, "filtered_resps": [[s, False] for s in scores]})
        free.append({"doc_id": i, "target": gold, "filtered_resps": [[5.0, False], [0.0, False], [0.0, False]]})
    raw = sum(max(range(3), key=lambda k: s["filtered_resps"][k][0]) == s["target"] for s in samples) / 6
    assert raw == pytest.approx(1 / 3)
    assert contextually_calibrated_acc(samples, free) == 1.0 and batch_calibrated_acc(samples) == 1.0


def test_bad_task_files_and_models(model, tmp_path):
    bad_label = tmp_path / "bad.jsonl"
    row = json.loads(open(TASK_DATA["jnli_local"]["validation"]).readline())
    bad_label.write_text(json.dumps(row) + "\n" + json.dumps({**row, "label": "maybe"}) + "\n")
    with pytest.raises(RecipeError, match=r"bad.jsonl:2: label 'maybe'"):
        stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=["jnli_local"],
                                           task_data={"jnli_local": str(bad_label)}, output_dir=str(tmp_path / "o")))
    out_of_range = tmp_path / "jcqa.jsonl"
    row = json.loads(open(TASK_DATA["jcommonsenseqa_local"]["train"]).readline())
    out_of_range.write_text(json.dumps({**row, "label": 7}) + "\n")
    with pytest.raises(RecipeError, match="out of range"):
        stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=["jcommonsenseqa_local"],
                                           task_data={"jcommonsenseqa_local": str(out_of_range)},
                                           output_dir=str(tmp_path / "o")))
    with pytest.raises(RecipeError, match="SQuAD-style"):  # JSON Lines where one JSON document belongs
        stage.main(stage.EvaluateArguments(model_name_or_path=[str(model)], tasks=["jsquad_local"],
                                           task_data={"jsquad_local": TASK_DATA["niilc_local"]},
                                           output_dir=str(tmp_path / "o")))
    no_tokenizer = tmp_path / "no_tok"
    no_tokenizer.mkdir()
    for f in ("config.json", "model.safetensors", "generation_config.json"):
        if (model / f).exists():
            shutil.copy(model / f, no_tokenizer / f)
    with pytest.raises(RecipeError, match="no tokenizer"):
        stage.main(stage.EvaluateArguments(model_name_or_path=[str(no_tokenizer)], tasks=["niilc_local"],
                                           task_data={"niilc_local": TASK_DATA["niilc_local"]},
                                           output_dir=str(tmp_path / "o")))
    assert not (tmp_path / "o" / "report.json").exists()


QUESTIONS = [{"question_id": i, "category": "writing", "turns": [f"質問{i}"]} for i in range(6)]


def judge_args(tmp_path, a, b):
    for name, answers in (("a", a), ("b", b)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"question_id": i, "choices": [{"turns": [t]}]},
                                                                   ensure_ascii=False) + "\n"
                                                        for i, t in enumerate(answers)))
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUESTIONS))
    return judge_stage.JudgeArguments(questions_path=str(tmp_path / "q.jsonl"), output_dir=str(tmp_path / "out"),
                                      answers_a=str(tmp_path / "a.jsonl"), answers_b=str(tmp_path / "b.jsonl"))


def test_judge_swaps_positions_and_counts_flips_as_ties(tmp_path):
    a, b = ["良い答え"] * 6, ["悪い答え"] * 6
    always_first = judge_stage.main(judge_args(tmp_path, a, b), judge=lambda prompt: "Verdict: [[A]]")
    assert always_first["tie"] == always_first["inconsistent"] == 6 and always_first["adjusted_win_rate"] == 0.5

    def by_content(prompt):  # prefers the answer that says 良い, wherever it stands
        first = prompt.split("[The Start of Assistant A's Answer]\n")[1].split("\n")[0]
        return "[[A]]" if "良い" in first else "[[B]]"

    fair = judge_stage.main(judge_args(tmp_path, a, b), judge=by_content)
    assert fair["win"] == 6 and fair["inconsistent"] == 0 and fair["adjusted_win_rate"] == 1.0
    mixed = judge_stage.main(judge_args(tmp_path, a[:3] + b[:3], b[:3] + a[:3]), judge=by_content)
    assert (mixed["win"], mixed["loss"], mixed["tie"]) == (3, 3, 0)
    records = [json.loads(line) for line in open(tmp_path / "out" / "judgments.jsonl")]
    assert {r["verdict"] for r in records} == {"A", "B"}


def test_single_answer_grading(tmp_path):
    args = judge_args(tmp_path, ["答え"] * 6, ["答え"] * 6)
    args.mode = "single"
    report = judge_stage.main(args, judge=lambda prompt: "The answer is fine. Rating: [[7]]")
    assert report["mean_rating"] == 7.0 and report["rated"] == 6


def test_pass_at_k_closed_form():
    from math import comb

    for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 0, 5), (5, 5, 2), (200, 13, 10)]:
        expected = 1.0 if n - c < k else 1 - comb(n - c, k) / comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_sandbox_kills_loops_and_blocks_writes_outside(tmp_path):
    outside = tmp_path / "outside.txt"
    assert run_sandboxed("while True:\n    pass\n", timeout_s=2)[0] == "timeout"
    status, output = run_sandboxed(f"open({str(outside)!r}, 'w').write('x')\n")
    assert status == "failed" and "not allowed" in output and not outside.exists()
    assert run_sandboxed("open('inside.txt', 'w').write('x')\nassert open('inside.txt').read() == 'x'\n")[0] == "passed"
    assert run_sandboxed("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n")[0] == "failed"
    problem = {"prompt": "def add(a, b):\n", "test": "def check(f):\n    assert f(2, 3) == 5\n", "entry_point": "add"}
    assert run_sandboxed(humaneval_program(problem, "    return a + b\n"))[0] == "passed"
    assert run_sandboxed(humaneval_program(problem, "    return a - b\n"))[0] == "failed"
