"""The seed systems of issue 17: quality classifier filter, SemDeDup, Rho-1 token selection, Self-Instruct. Each test
checks the method's defining behaviour on a real (small) run."""
import json
import math
import os

import pytest
import torch
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError

DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
WIKI = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")


# --- Rho-1 ---------------------------------------------------------------------------------------------------------

def test_rho1_loss_uses_exactly_the_top_share_of_tokens_by_excess_loss():
    """Hand computation on a 2 x 6 batch with ignored labels: per-token cross-entropy of model and reference with
    plain Python, the ceil(ratio * n) tokens with the largest L_theta - L_ref, their mean; the Trainer's training loss
    agrees, and its evaluation loss is the plain mean over every scored token."""
    from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

    from llm_recipes.scripts.pretrain import SelectiveTrainer
    from llm_recipes.training.token_selection import selective_loss

    config = LlamaConfig(vocab_size=17, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2)
    torch.manual_seed(0)
    model, reference = LlamaForCausalLM(config), LlamaForCausalLM(config)
    input_ids = torch.randint(0, 17, (2, 6))
    labels = input_ids.clone()
    labels[0, 4:] = -100  # padding-like positions are never scored
    labels[1, 2] = -100
    ratio = 0.4
    logits, ref_logits = model(input_ids).logits, reference(input_ids).logits

    def ce(lg, row, t):  # -log softmax(logits[row, t])[label[row, t + 1]]
        values = lg[row, t].tolist()
        top = max(values)
        log_z = top + math.log(sum(math.exp(v - top) for v in values))
        return log_z - values[int(labels[row, t + 1])]

    scored = [(row, t) for row in range(2) for t in range(5) if labels[row, t + 1] != -100]
    excess = {(row, t): ce(logits, row, t) - ce(ref_logits, row, t) for row, t in scored}
    k = math.ceil(ratio * len(scored))
    chosen = sorted(scored, key=lambda p: excess[p], reverse=True)[:k]
    by_hand = sum(ce(logits, row, t) for row, t in chosen) / k

    loss, selected, mask, _ = selective_loss(logits, ref_logits, labels, ratio)
    assert int(mask.sum()) == len(scored) == 7 and int(selected.sum()) == k == 3
    assert {(int(r), int(t)) for r, t in selected.nonzero()} == set(chosen)
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)

    trainer = SelectiveTrainer(model=model, args=TrainingArguments(output_dir="unused", use_cpu=True, report_to=[]),
                               reference_model=reference, ratio=ratio)
    model.train()
    trained_loss = trainer.compute_loss(model, {"input_ids": input_ids, "labels": labels})
    assert trained_loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert trainer.step_counts == {"selected": 3, "scored": 7, "loss_sum": pytest.approx(
        sum(ce(logits, r, t) for r, t in scored), rel=1e-5)}
    model.eval()  # evaluation: the plain loss over every scored token
    assert trainer.compute_loss(model, {"input_ids": input_ids, "labels": labels}).item() == pytest.approx(
        sum(ce(logits, r, t) for r, t in scored) / len(scored), rel=1e-5)


def test_rho1_pretraining_logs_the_selected_share_per_step(model_dir, tmp_path):
    from llm_recipes.scripts import pretrain

    keys = dict(dataset_name=DOCS, tokenizer_name_or_path=str(model_dir), output_dir=str(tmp_path / "slm"),
                hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, block_size=64,
                max_steps=4, per_device_train_batch_size=4, logging_steps=2, save_steps=100, report_to=[],
                eval_strategy="no", token_selection={"reference_model": str(model_dir), "ratio": 0.3})
    report = pretrain.main(*load_recipe("pretrain", keys))
    steps = [json.loads(line) for line in open(tmp_path / "slm" / "token_selection.jsonl", encoding="utf-8")]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert all(s["scored"] == 4 * 63 and s["selected"] == math.ceil(0.3 * 4 * 63) for s in steps)
    assert report["selected_token_fraction"] == pytest.approx(math.ceil(0.3 * 252) / 252)
    with pytest.raises(RecipeError, match="token_selection.ratio"):
        pretrain.main(*load_recipe("pretrain", {**keys, "token_selection": {"reference_model": "x", "ratio": 1.5}}))


# --- quality classifier ---------------------------------------------------------------------------------------------

def test_quality_classifier_filter_removes_what_the_classifier_scores_below_the_threshold(tmp_path):
    """Train on Wikipedia paragraphs vs generated web noise, filter the held-out mix in the corpus stage: every document
    in removed/quality_classifier/ scores below the threshold with the saved model, every kept one at or above it, and
    the corpus report accounts for it (read = kept + sum of removed)."""
    import glob

    import fasttext

    from llm_recipes.corpus.steps import char_tokens
    from llm_recipes.scripts import corpus, quality_classifier

    out = tmp_path / "qc"
    report = quality_classifier.main(*load_recipe("quality_classifier", dict(
        output_dir=str(out), positive=[{"path": WIKI, "limit": 300}], generated_negatives=150, held_out_fraction=0.3,
        bucket=20000)))
    assert report["counts"] == {"hq": {"train": 210, "held_out": 90}, "lq": {"train": 105, "held_out": 45}}
    assert report["recall"] > 0.8 and report["precision"] > 0.8
    threshold = 0.9  # strict: some Wikipedia paragraphs fall below it too
    result = corpus.main(*load_recipe("corpus", dict(
        input_path=str(out / "held_out.jsonl"), output_dir=str(tmp_path / "corpus"), languages=["ja"],
        language_threshold=0.0, gopher_repetition={"ja": None}, gopher_quality={"ja": None},
        fineweb_quality={"ja": None}, japanese_quality=False,
        quality_classifier={"model": str(out / "model.bin"), "threshold": threshold})))
    model = fasttext.load_model(str(out / "model.bin"))

    def texts(folder):
        return [json.loads(line)["text"] for f in glob.glob(str(tmp_path / "corpus" / folder / "*.jsonl"))
                for line in open(f, encoding="utf-8")]

    def p_hq(text):
        labels, probs = model.predict(char_tokens(text), k=-1)  # how the classifier was trained (model.bin.json)
        return dict(zip(labels, probs))["__label__hq"]

    removed, kept = texts("removed/quality_classifier"), texts("kept")
    assert len(removed) == result["removed"]["quality_classifier"] >= 40 and len(kept) == result["kept"] >= 40
    assert all(p_hq(t) < threshold for t in removed) and all(p_hq(t) >= threshold for t in kept)
    assert result["read"] == 135 == result["kept"] + sum(result["removed"].values())


# --- SemDeDup -------------------------------------------------------------------------------------------------------

def test_semdedup_removes_a_planted_paraphrase_cluster_but_no_distinct_document(model_dir, tmp_path):
    """Four paraphrases of one village's facts (sentences reordered and reworded) among Wikipedia paragraphs from
    different articles and documents about other villages. The embedding is the fixture model's mean-pooled hidden
    states (random weights: they track shared content, which is enough here: paraphrase pairs sit above 0.94, distinct
    pairs below 0.9). Three paraphrases go to removed/semdedup/, one stays, every distinct document stays."""
    from llm_recipes.scripts import semdedup

    a, a2, b, b2, c = ("オナソ村の名産はクリです。", "オナソ村の名産品はクリです。", "オナソ村の守り神の動物はクマです。",
                       "オナソ村の守り神はクマという動物です。", "オナソ村の旗の色は青です。")
    paraphrases = [a + b + c, b + a + c, "オナソ村の旗は青い色です。" + a + b, a2 + c + b2]
    titles, distinct = set(), []
    for line in open(WIKI, encoding="utf-8"):
        record = json.loads(line)
        if record["title"] not in titles and len(record["text"]) > 80 and len(distinct) < 20:
            titles.add(record["title"])
            distinct.append(record["text"])
    distinct += [json.loads(line)["text"] for line in open(DOCS, encoding="utf-8")
                 if "オナソ" not in line and json.loads(line)["text"][0] in "アイウエオカキクケコサシスセソタトナニノハヒホマミモラリルロワ"][:10]
    docs = [{"id": f"para-{i}", "text": t} for i, t in enumerate(paraphrases)]
    docs += [{"id": f"doc-{i}", "text": t} for i, t in enumerate(distinct)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    report = semdedup.main(*load_recipe("semdedup", dict(
        input_path=str(tmp_path / "in.jsonl"), output_dir=str(tmp_path / "out"), model_name_or_path=str(model_dir),
        num_clusters=3, epsilon=0.08, epsilons=[0.01, 0.08, 0.3])))
    removed = [json.loads(line) for line in open(tmp_path / "out" / "removed" / "semdedup" / "00000.jsonl",
                                                 encoding="utf-8")]
    kept = [json.loads(line)["id"] for line in open(tmp_path / "out" / "kept" / "00000.jsonl", encoding="utf-8")]
    assert len(removed) == 3
    assert all(r["id"].startswith("para-") and r["metadata"]["duplicate_of"].startswith("para-") and
               r["metadata"]["cosine"] > 0.92 for r in removed)
    assert sum(k.startswith("para-") for k in kept) == 1 and len(kept) == len(distinct) + 1
    assert report["read"] == len(docs) == report["kept"] + report["removed"]["semdedup"]
    by_eps = report["removed_by_epsilon"]
    assert by_eps["0.01"] <= by_eps["0.08"] == 3 <= by_eps["0.3"]


def test_semdedup_keeps_the_duplicate_farthest_from_the_centroid_as_the_reference_code_does():
    """Three near-identical unit vectors in one cluster: keep=farthest (the paper's keep_hard) keeps the one least
    similar to the centroid, keep=closest the most similar."""
    import numpy as np

    from llm_recipes.scripts.semdedup import duplicates

    e = np.array([[1.0, 0.0, 0.0], [0.99, 0.141, 0.0], [0.98, 0.0, 0.199], [0.0, 1.0, 0.0]])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels, centroids = np.array([0, 0, 0, 1]), np.array([[0.99, 0.05, 0.05], [0.0, 1.0, 0.0]])
    to_centroid = e[:3] @ (centroids[0] / np.linalg.norm(centroids[0]))
    for keep, kept in (("farthest", int(np.argmin(to_centroid))), ("closest", int(np.argmax(to_centroid)))):
        best, partner = duplicates(e, labels, centroids, keep)
        assert [i for i in range(3) if best[i] <= 0.95] == [kept] and best[3] == -1.0
        assert all(best[i] > 0.95 for i in range(3) if i != kept)


# --- Self-Instruct --------------------------------------------------------------------------------------------------

SEEDS = os.path.join(REPO, "recipes", "self-instruct", "data", "seed_tasks.jsonl")


def scripted_endpoint(replies):
    """A local OpenAI-compatible /chat/completions server answering by the prompt's first line (the generator a recipe
    may name with api_base), so that the test knows exactly what was generated."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][0]["content"]
            reply = next(text for key, text in replies if key(prompt))
            data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_self_instruct_rouge_filter_drops_a_planted_near_copy_and_writes_messages_with_provenance(tmp_path):
    """Every task-generation reply holds a near-copy of a seed task (one word written differently), a task needing a
    picture, a too-short one and two new tasks; the classification check says yes to one of them; an instance reply
    repeats an instance. Round 1 keeps the two new tasks (their second generation counts as repeated); round 2 drops
    them as ROUGE-L copies of the pool."""
    from llm_recipes.scripts import self_instruct

    new_task = "村の守り神について、子ども向けの短い物語を書いてください。"
    new_classification = "次の果物が甘いか酸っぱいかを判定してください。"
    tasks = (f" 次の文を英語に翻訳して下さい。\nタスク8: 写真に写っている動物を答えてください。\nタスク9: はい\n"
             f"タスク10: {new_task}\nタスク11: {new_classification}\n")
    server = scripted_endpoint([
        (lambda p: p.startswith("一連のタスク"), tasks),
        (lambda p: p.startswith("次のタスクは") and p.endswith(f"{new_classification}\n分類タスクか:"), "はい"),
        (lambda p: p.startswith("次のタスクは"), "いいえ"),
        (lambda p: p.startswith("分類タスクの定義"), " 甘い\n入力: モモ\nクラスラベル: 酸っぱい\n入力: レモン\n"),
        (lambda p: p.startswith("次のタスクの例"), " 夏祭り\n出力: むかしむかし、キツネが村を守っていました。\n入力: 夏祭り\n"
                                                 "出力: むかしむかし、キツネが村を守っていました。\n"),
    ])
    try:
        report = self_instruct.main(*load_recipe("self_instruct", dict(
            seed_tasks=SEEDS, output_dir=str(tmp_path / "si"), api_base=f"http://127.0.0.1:{server.server_port}/v1",
            api_model="scripted", rounds=2, prompts_per_round=2)))
    finally:
        server.shutdown()
    first, second = report["rounds"]
    assert first["generated"] == second["generated"] == 10
    assert first["dropped"] == {"rouge_l": 2, "blocked_keyword": 2, "too_short": 2, "repeated": 2}
    assert first["accepted"] == 2 and first["classification"] == 1 and first["instances"] == 3
    assert first["instances_dropped"] == 1  # the repeated instance
    assert second["dropped"] == {"rouge_l": 6, "blocked_keyword": 2, "too_short": 2} and second["accepted"] == 0
    log = [json.loads(line) for line in open(tmp_path / "si" / "tasks.jsonl", encoding="utf-8")]
    near_copy = next(t for t in log if t["instruction"] == "次の文を英語に翻訳して下さい。")
    assert near_copy["dropped"] == "rouge_l" and near_copy["most_similar"] == "次の文を英語に翻訳してください。"
    assert 0.7 <= near_copy["rouge_l_max"] < 1.0
    kept = [t for t in log if t["dropped"] is None]
    assert [t["instruction"] for t in kept] == [new_task, new_classification] and all(
        t["rouge_l_max"] < 0.7 for t in kept)
    records = [json.loads(line) for line in open(tmp_path / "si" / "sft.jsonl", encoding="utf-8")]
    assert [[m["role"] for m in r["messages"]] for r in records] == [["user", "assistant"]] * 3
    by_prompt = {r["messages"][0]["content"]: r for r in records}
    story = by_prompt[f"{new_task}\n\n夏祭り"]
    assert story["provenance"]["instance_generation"] == "input-first" and story["provenance"]["generator"] == "scripted"
    lemon = by_prompt[f"{new_classification}\n\nレモン"]
    assert lemon["messages"][1]["content"] == "酸っぱい" and lemon["provenance"]["instance_generation"] == "output-first"
    assert {r["provenance"]["round"] for r in records} == {0} and report["sft_records"] == 3


def test_self_instruct_runs_with_a_local_model(model_dir, tmp_path):
    """The local path (llm_recipes.generation.generate, sampling) with the fixture's random model: the text is noise, the
    pipeline still accounts for every generated task."""
    from llm_recipes.scripts import self_instruct

    report = self_instruct.main(*load_recipe("self_instruct", dict(
        seed_tasks=SEEDS, output_dir=str(tmp_path / "si"), model_name_or_path=str(model_dir), rounds=2,
        prompts_per_round=2, max_new_tokens=16)))
    for r in report["rounds"]:
        assert r["generated"] == sum(r["dropped"].values()) + r["accepted"] + r["tasks_without_instances"]
    log = [json.loads(line) for line in open(tmp_path / "si" / "tasks.jsonl", encoding="utf-8")]
    assert len(log) == report["tasks_generated"] and {t["round"] for t in log} <= {0, 1}


# --- real-scale variants --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage, config, names", [
    ("quality_classifier", "recipes/quality-classifier-ja-web/quality_classifier.yaml",
     ["wikimedia/wikipedia", "20231101.ja", "HuggingFaceFW/fineweb-2", "jpn_Jpan"]),
    ("corpus", "recipes/quality-classifier-ja-web/corpus.yaml", ["🤖 fastText", "sbatch script"]),
    ("semdedup", "recipes/semdedup-ja-web/semdedup.yaml", ["intfloat/multilingual-e5-base", "MiniBatchKMeans k=20000"]),
    ("pretrain", "recipes/rho1-ja-0.5b/reference.yaml", ["Qwen/Qwen2.5-0.5B", "wikimedia/wikipedia:20231101.ja"]),
    ("pretrain", "recipes/rho1-ja-0.5b/pretrain.yaml", ["HuggingFaceFW/fineweb-2:jpn_Jpan", "token selection (Rho-1)"]),
    ("self_instruct", "recipes/self-instruct-ja/self_instruct.yaml", ["llm-jp/llm-jp-3-1.8b", "タスク7:"]),
], ids=lambda v: v if isinstance(v, str) and v.startswith("recipes/") else None)
def test_real_scale_variants_print_their_plan_offline(stage, config, names, tmp_path, capsys):
    import importlib

    module = importlib.import_module(f"llm_recipes.scripts.{stage}")
    module.main(*load_recipe(stage, os.path.join(REPO, config), dry_run=True, output_dir=str(tmp_path / "out")))
    out = capsys.readouterr().out
    assert all(name in out for name in names), out
