"""SliCK (llm_recipes.evaluation.slick, scripts/slick.py): the paper's category rules, exact match, and planted known
and unknown facts landing in the right categories, through a deterministic generator and through a tiny model that
memorised some facts a few seconds before."""
import json
import random

import pytest

from llm_recipes.errors import RecipeError
from llm_recipes.evaluation import slick
from llm_recipes.runner import script_module

TEMPLATE, ANSWER = "質問：{question}\n答え：", "{answer}です。"


@pytest.mark.parametrize("p_greedy, p_sampled, expected", [
    (1.0, 1.0, "HighlyKnown"), (1.0, 0.0, "HighlyKnown"), (0.75, 0.0, "MaybeKnown"), (0.1, 1.0, "MaybeKnown"),
    (0.0, 0.0625, "WeaklyKnown"), (0.0, 1.0, "WeaklyKnown"), (0.0, 0.0, "Unknown")])
def test_category_rules_follow_the_paper(p_greedy, p_sampled, expected):
    assert slick.category(p_greedy, p_sampled) == expected
    assert slick.known(expected) == ("Unknown" if expected == "Unknown" else "Known")


def test_category_rejects_values_outside_zero_one():
    with pytest.raises(ValueError):
        slick.category(1.5, 0.0)


def test_exact_match_after_normalisation():
    assert slick.is_correct("リンゴです。\n質問：ほか", "リンゴ", suffixes=["です"])
    assert slick.is_correct("ｒｅｄ!", "Red")  # NFKC, case, punctuation
    assert slick.is_correct(" The Beatles.", ["Beatles", "Fab Four"])  # articles, aliases
    assert not slick.is_correct("リンゴとミカンです。", "リンゴ", suffixes=["です"])  # exact, not containment
    assert not slick.is_correct("", "リンゴ")


def facts_of(n, seen, answers):
    return [{"question": f"{seen}{i}村の名産は何ですか？", "answer": answers[i % len(answers)], "relation": "fruit",
             "seen": seen} for i in range(n)]


def stub_model(truth):
    """A deterministic stand-in for `generate`: reads the last question of each prompt; `truth[question]` says how it
    answers: always right, right only when its prompt shows a given exemplar, right only when sampling, never."""
    def generate_fn(prompts, do_sample=False, temperature=1.0, num_return_sequences=1):
        out = []
        for prompt in prompts:
            question = prompt.rsplit("質問：", 1)[1].split("\n")[0]
            mode, answer, cue = truth[question]
            right = {"always": True, "cue": cue in prompt, "sampled": do_sample, "never": False}[mode]
            out.append([f"{answer if right else 'ナシ'}です。\n質問：つぎ"] * num_return_sequences)
        return out
    return generate_fn


def test_categoriser_puts_planted_facts_in_their_categories():
    pool = facts_of(12, "pool", ["リンゴ", "ミカン"])
    facts = facts_of(3, "high", ["モモ"]) + facts_of(3, "maybe", ["ブドウ"]) + facts_of(3, "weak", ["クリ"]) + \
        facts_of(3, "unknown", ["メロン"])
    modes = {"high": "always", "maybe": "cue", "weak": "sampled", "unknown": "never"}
    truth = {f["question"]: (modes[f["seen"]], f["answer"], pool[0]["question"]) for f in facts}
    rows = slick.categorise(facts, pool, stub_model(truth), n_prompts=10, k_shot=4, n_samples=2, seed=0,
                            template=TEMPLATE, answer_template=ANSWER, suffixes=["です"])
    got = {r["question"]: r["category"] for r in rows}
    expected = {"high": "HighlyKnown", "maybe": "MaybeKnown", "weak": "WeaklyKnown", "unknown": "Unknown"}
    assert got == {f["question"]: expected[f["seen"]] for f in facts}
    maybe = [r for r in rows if r["seen"] == "maybe"]
    assert all(0 < r["p_greedy"] < 1 for r in maybe)  # the cue exemplar is in some of the 10 prompts, not all
    agreement = slick.agreement(rows, "seen", {"high": "Known", "unknown": "Unknown", "weak": "Unknown"})
    assert agreement["groups"]["weak"]["agreement"] == 0.0 and agreement["overall"] == pytest.approx(6 / 9)
    # the fine-tuning mixtures: a controlled Unknown share, nested per category
    u0, u50 = slick.mixture(rows, 6, 0.0, seed=1), slick.mixture(rows, 6, 0.5, seed=1)
    assert [r["known"] for r in u0].count("Unknown") == 0 and [r["known"] for r in u50].count("Unknown") == 3
    with pytest.raises(RecipeError, match="need 0 Known and 7 Unknown"):
        slick.mixture(rows, 7, 1.0)


def test_fewshot_prompts_exclude_the_asked_question_and_keep_the_relation():
    pool = facts_of(6, "a", ["リンゴ"]) + [dict(f, relation="color", answer="赤") for f in facts_of(6, "b", ["x"])]
    prompts = slick.fewshot_prompts(pool[0], pool, 5, 4, random.Random(0), TEMPLATE, ANSWER)
    assert len(prompts) == 5 and len(set(prompts)) > 1
    for p in prompts:
        assert p.count(pool[0]["question"]) == 1 and p.endswith(f"質問：{pool[0]['question']}\n答え：")
        assert "赤" not in p and p.count("リンゴです。") == 4


def memorising_model(tmp_path, known, steps=100):
    """A 2-layer Llama trained for a few seconds on FAQ-like pages stating the `known` facts only."""
    import torch
    from conftest import tiny_tokenizer_dir
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir(tmp_path))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, eos_token_id=tok.eos_token_id,
                                         pad_token_id=tok.pad_token_id))
    rng = random.Random(0)
    lines = [slick.render(f["question"], f["answer"], TEMPLATE, ANSWER) for f in known]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    loss = None
    for _ in range(steps):
        pages = ["\n".join(rng.sample(lines, 5)) for _ in range(8)]
        batch = tok(pages, padding=True, return_tensors="pt")
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), tok, loss.item() if steps else None


def test_a_model_that_memorised_some_facts_knows_those_and_not_the_others(tmp_path):
    """The real path end to end (few-shot prompts, transformers' generate, exact match): facts the model was trained
    on come out Known, facts about villages it never saw (with answers it never produced) come out Unknown."""
    known = facts_of(10, "カキ", ["リンゴ", "ミカン", "ブドウ", "モモ"])
    unseen = facts_of(6, "サシ", ["ナシ", "イチゴ", "メロン"])

    def categories(steps):
        model, tok, loss = memorising_model(tmp_path / str(steps), known, steps)
        assert steps == 0 or loss < 0.6, loss
        rows = slick.categorise(known + unseen, known, slick.hf_generate_fn(model, tok, max_new_tokens=6),
                                n_prompts=3, k_shot=3, n_samples=3, temperature=0.5, template=TEMPLATE,
                                answer_template=ANSWER, suffixes=["です"])
        return {s: [r["category"] for r in rows if r["seen"] == s] for s in ("カキ", "サシ")}

    trained = categories(100)
    assert trained["サシ"] == ["Unknown"] * 6, trained
    assert trained["カキ"].count("HighlyKnown") >= 8 and "Unknown" not in trained["カキ"], trained
    assert categories(0)["カキ"] == ["Unknown"] * 10  # the same facts before training: nothing known


def test_stage_writes_categories_mixtures_and_report(tmp_path, monkeypatch):
    from llm_recipes.config import load_recipe
    from llm_recipes.scripts import slick as stage

    facts = [dict(f, split=("heldout" if i % 3 == 0 else "finetune"))
             for i, f in enumerate(facts_of(12, "faq", ["リンゴ", "ミカン"]) + facts_of(12, "unseen", ["モモ"]))]
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in facts), encoding="utf-8")
    truth = {f["question"]: ("always" if f["seen"] == "faq" else "never", f["answer"], "") for f in facts}
    monkeypatch.setattr(stage, "model_fn", lambda path, args: stub_model(truth))
    (args,) = load_recipe(stage, dict(
        model_name_or_path="unused", dataset_name=str(path), output_dir=str(tmp_path / "out"), template=TEMPLATE,
        answer_template=ANSWER, answer_suffixes=["です"], truth_key="seen",
        truth_expected={"faq": "Known", "unseen": "Unknown"}, mixtures=[{"name": "u50", "unknown_share": 0.5}],
        mixture_size=8, mixture_where={"split": "finetune"}, heldout_where={"split": "heldout"}))
    report = stage.main(args)
    assert report["agreement"]["overall"] == 1.0 and report["shares"]["Unknown"] == 0.5
    mix = [json.loads(line) for line in open(tmp_path / "out" / "u50.jsonl", encoding="utf-8")]
    assert len(mix) == 8 and sum(r["known"] == "Unknown" for r in mix) == 4
    assert all(r["prompt"] == f"質問：{r['question']}\n答え：" and r["completion"] == f"{r['answer']}です。"
               for r in mix)
    assert all(r["split"] == "finetune" for r in mix) and report["heldout"]["facts"] == 8
    assert (tmp_path / "out" / "categories.png").stat().st_size > 0 and (tmp_path / "out" / "report.md").exists()


def test_stage_needs_exactly_one_mode(tmp_path):
    from llm_recipes.config import load_recipe
    from llm_recipes.scripts import slick as stage

    with pytest.raises(RecipeError, match="either model_name_or_path"):
        stage.main(*load_recipe(stage, dict(output_dir=str(tmp_path), model_name_or_path="m", runs=["r"])))


def test_track_writes_a_report_per_run_and_eval_set_that_verdict_reads(tmp_path, monkeypatch):
    """Track mode on fake epoch checkpoints (a stub generator per checkpoint): accuracy per epoch, base model as epoch
    0, one report.json per run and eval set, and research/verdict.py computing a claim from them."""
    from llm_recipes.config import load_recipe
    from llm_recipes.research import verdict
    from llm_recipes.scripts import slick as stage

    facts = facts_of(4, "k", ["リンゴ"]) + facts_of(4, "u", ["モモ"])
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(dict(f, known="Known" if f["seen"] == "k" else "Unknown"),
                                       ensure_ascii=False) + "\n" for f in facts), encoding="utf-8")
    runs = []
    for seed in (1, 2, 3):
        runs.append(str(tmp_path / f"sft_s{seed}"))
        for step, epoch in ((5, 1.0), (10, 2.0)):
            (tmp_path / f"sft_s{seed}" / f"checkpoint-{step}").mkdir(parents=True)
            (tmp_path / f"sft_s{seed}" / f"checkpoint-{step}" / "trainer_state.json").write_text(
                json.dumps({"epoch": epoch}))

    def fake_model(model_path, args):  # Known facts right from epoch 1, Unknown ones at epoch 2 (seed 3: half of them)
        late = [f["question"] for f in facts[4:8 if "sft_s3" not in model_path else 6]]
        mode = {f["question"]: ("never" if model_path == "base" else "always" if f["seen"] == "k" or (
            model_path.endswith("checkpoint-10") and f["question"] in late) else "never", f["answer"], "")
            for f in facts}
        return stub_model(mode)

    monkeypatch.setattr(stage, "model_fn", fake_model)
    (args,) = load_recipe(stage, dict(
        runs=runs, base_model="base", output_dir=str(tmp_path / "track"), template=TEMPLATE, answer_suffixes=["です"],
        eval_sets=[{"name": "known", "path": str(path), "where": {"known": "Known"}},
                   {"name": "unknown", "path": str(path), "where": {"known": "Unknown"}}]))
    report = stage.main(args)
    assert report["curves"]["sft_s1/unknown"] == {"epochs": [0.0, 1.0, 2.0], "accuracy": [0.0, 0.0, 1.0]}
    run1 = json.load(open(tmp_path / "track" / "sft_s1" / "known" / "report.json", encoding="utf-8"))
    assert (run1["accuracy_mean"], run1["accuracy_best"], run1["accuracy_start"]) == (1.0, 1.0, 0.0)
    (vargs,) = load_recipe(verdict, dict(
        arms={"known": [f"{r.replace('sft_s', 'track/sft_s')}/known" for r in runs],
              "unknown": [f"{r.replace('sft_s', 'track/sft_s')}/unknown" for r in runs]},
        metrics=[{"name": "fit", "key": "accuracy_mean"}], claims=[{"metric": "fit", "better": "known",
                                                                     "worse": "unknown"}],
        output_dir=str(tmp_path / "verdict")))
    (result,) = verdict.main(vargs)["verdicts"]
    assert result["verdict"] == "reproduced" and result["mean_difference"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert (tmp_path / "track" / "curves.png").stat().st_size > 0


def test_real_scale_variant_validates_offline(tmp_path, capsys):
    """recipes/slick-entityquestions: every stage resolves and parses; the SliCK and SFT stages print their plan with
    --dry_run (a hub model, nothing downloaded)."""
    import os

    import yaml
    from conftest import REPO

    from llm_recipes.config import parse, recipe_context
    from llm_recipes.scripts import run_recipe

    folder = os.path.join(REPO, "recipes", "slick-entityquestions")
    spec = yaml.safe_load(open(os.path.join(folder, "recipe.yaml"), encoding="utf-8"))
    context = recipe_context(folder, str(tmp_path / "run"))
    for item in run_recipe.expand_seeds(spec["stages"]):  # the SFT stages run once per seed (`seeds:`)
        module = script_module(item["script"], folder)
        path, _ = run_recipe.resolve(folder, item, context, recipe_context(folder)["run_dir"], {})
        if os.path.splitext(os.path.basename(item["script"]))[0] in ("slick", "sft"):
            module.main(*parse(module.ARGUMENTS, ["--config", path, "--dry_run", "true"]))
    out = capsys.readouterr().out
    assert "Qwen/Qwen2.5-1.5B" in out and "10 x 4" in out and "categorise/u50.jsonl" in out
