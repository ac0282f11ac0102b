"""The shared-context scorer (lm-eval model `hf-shared`) gives stock lm-eval's log-likelihoods: one forward pass per
context with the continuations over its key/value cache, in float32, on a small model."""

import json
import os

from conftest import REPO

TINY = os.path.join(REPO, "recipes", "tiny", "data")


def evaluate(model_dir, out, backend, tasks, task_data, num_fewshot=0):
    from llm_recipes.scripts import evaluation

    return evaluation.main(evaluation.EvaluateArguments(
        model_name_or_path=[str(model_dir)], tasks=tasks, output_dir=str(out), task_data=task_data,
        num_fewshot=num_fewshot, backend=backend, dtype="float32", batch_size=4))


def samples(out):
    rows = [json.loads(line) for line in open(next(os.path.join(out, f) for f in os.listdir(out)
                                                   if f.startswith("samples_")), encoding="utf-8")]
    return {(r["task"], r["doc_id"]): [float(x) for x in r["scores"]] for r in rows}


def test_shared_context_log_likelihoods_equal_stock_lm_eval(model_dir, tmp_path):
    mc = os.path.join(tmp_path, "mc.jsonl")  # the tiny world's questions, 2-shot from a disjoint part
    rows = [json.loads(line) for line in open(os.path.join(TINY, "eval_mc.jsonl"), encoding="utf-8")]
    with open(mc, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:30])
    train = os.path.join(tmp_path, "train.jsonl")
    with open(train, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[30:])
    docs = os.path.join(tmp_path, "docs.jsonl")
    with open(docs, "w", encoding="utf-8") as f:
        for line in list(open(os.path.join(TINY, "docs.jsonl"), encoding="utf-8"))[:12]:
            f.write(json.dumps({"text": json.loads(line)["text"]}, ensure_ascii=False) + "\n")
    tasks = ["jcommonsenseqa_simple", "bits_per_char_ja"]
    data = {"jcommonsenseqa_simple": {"validation": mc, "train": train}, "bits_per_char_ja": docs}
    stock = evaluate(model_dir, tmp_path / "stock", "hf", tasks, data, num_fewshot=2)
    ours = evaluate(model_dir, tmp_path / "ours", "hf-shared", tasks, data, num_fewshot=2)
    a, b = samples(tmp_path / "stock"), samples(tmp_path / "ours")
    assert a.keys() == b.keys() and len([k for k in a if k[0] == "jcommonsenseqa_simple"]) == 30
    for key in a:
        for x, y in zip(a[key], b[key]):
            assert abs(x - y) <= 1e-4 * max(1.0, abs(x) / 100), (key, x, y)  # per request (rolling: relative)
    for task in tasks:
        assert abs(stock["scores"]["model"][task]["score"] - ours["scores"]["model"][task]["score"]) < 1e-6
    assert ours["cost"]["model"]["backend"] == "hf-shared"
