"""The bad-input matrix: each case gets a one-line error naming the culprit, exit code 2, no traceback, and no output
marked complete (no report.json in its output_dir)."""
import importlib
import json
import os
import shutil

import pytest
import yaml
from conftest import REPO, run_script

from llm_recipes.config import parse, run

DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
SFT = os.path.join(REPO, "recipes", "tiny", "data", "sft.jsonl")
DPO = os.path.join(REPO, "recipes", "tiny", "data", "dpo.jsonl")
FAST = {"max_steps": 2, "per_device_train_batch_size": 2, "save_steps": 100, "report_to": "none"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny Llama + tokenizer in safetensors, and variants: no chat template, pickle weights, too small a vocab."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llm_recipes.scripts import tokenizer as stage

    root = tmp_path_factory.mktemp("models")
    stage.main(stage.TokenizerArguments(input_path=DOCS, output_dir=str(root / "ok"), vocab_size=400))
    tok = AutoTokenizer.from_pretrained(root / "ok")
    torch.manual_seed(0)

    def llama(vocab):
        return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=1, num_attention_heads=4,
                                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))

    llama(len(tok)).save_pretrained(root / "ok")
    shutil.copytree(root / "ok", root / "no_template")
    os.remove(root / "no_template" / "chat_template.jinja")
    config = json.load(open(root / "no_template" / "tokenizer_config.json"))
    config.pop("chat_template", None)
    json.dump(config, open(root / "no_template" / "tokenizer_config.json", "w"))
    shutil.copytree(root / "ok", root / "pickle")  # the same model with pickle weights instead of safetensors
    torch.save(llama(len(tok)).state_dict(), root / "pickle" / "pytorch_model.bin")
    os.remove(root / "pickle" / "model.safetensors")
    llama(100).save_pretrained(root / "small_vocab")
    return root


def jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


def corpus(tmp, lines):
    data = tmp / "docs.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    return "corpus", {"input_path": str(data)}


GOOD = json.dumps({"id": "1", "text": "良い文書です。"}).encode()
CASES = {
    "malformed_jsonl": (lambda t, m: corpus(t, [GOOD, b"{not json"]), ["docs.jsonl:2", "not valid JSON"]),
    "missing_text_field": (lambda t, m: corpus(t, [GOOD, b'{"id": "2", "content": "x"}']),
                           ["docs.jsonl:2", "no 'text' field"]),
    "empty_text": (lambda t, m: corpus(t, [GOOD, b'{"id": "2", "text": "  "}']), ["docs.jsonl:2", "non-empty"]),
    "non_utf8": (lambda t, m: corpus(t, [GOOD, b'{"id": "2", "text": "\xff\xfe"}']), ["docs.jsonl:2", "UTF-8"]),
    "wrong_field_type": (lambda t, m: corpus(t, [GOOD, b'{"id": "2", "text": 42}']),
                         ["docs.jsonl:2", "'text' must be a non-empty string"]),
    "unknown_recipe_key": (lambda t, m: ("corpus", {"input_path": DOCS, "minhash_bucket": 4}),
                           ["unknown key 'minhash_bucket'", "minhash_buckets"]),
    "missing_input_path": (lambda t, m: ("corpus", {"input_path": str(t / "nope.jsonl")}),
                           ["input_path", "nope.jsonl"]),
    "output_dir_of_another_run": (lambda t, m: ("pretrain", {
        "dataset_name": DOCS, "tokenizer_name_or_path": str(m / "ok"), "model_name_or_path": str(m / "ok"), **FAST}),
        ["holds a different run", "dataset_name"]),
    "vocab_mismatch": (lambda t, m: ("pretrain", {
        "dataset_name": DOCS, "tokenizer_name_or_path": str(m / "ok"), "model_name_or_path": str(m / "small_vocab"),
        **FAST}), ["tokenizer_name_or_path", "embedding has 100"]),
    "chat_data_without_template": (lambda t, m: ("sft", {
        "model_name_or_path": str(m / "no_template"), "dataset_name": SFT, **FAST}), ["no chat template"]),
    "conversation_without_assistant_end": (lambda t, m: ("sft", {
        "model_name_or_path": str(m / "ok"), "dataset_name": jsonl(t / "c.jsonl", [
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "q"}]}]), **FAST}),
        ["c.jsonl", "record 2", "assistant turn"]),
    "over_long_sample": (lambda t, m: ("sft", {
        "model_name_or_path": str(m / "ok"), "dataset_name": jsonl(t / "long.jsonl", [
            {"messages": [{"role": "user", "content": "とても長い質問です。" * 50},
                          {"role": "assistant", "content": "はい。"}]}]),
        "max_length": 64, "on_too_long": "error", **FAST}), ["longer than max_length", "record 1"]),
    "preference_chosen_equals_rejected": (lambda t, m: ("dpo", {
        "model_name_or_path": str(m / "ok"), "dataset_name": jsonl(t / "p.jsonl", [
            {"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a", "rejected": "a"}]),
        **FAST}), ["p.jsonl", "record 2", "chosen == rejected"]),
    "pickle_weights": (lambda t, m: ("sft", {"model_name_or_path": str(m / "pickle"), "dataset_name": SFT, **FAST}),
                       ["pickle weights", "allow_pickle_weights"]),
    "impossible_model_shape": (lambda t, m: ("pretrain", {
        "dataset_name": DOCS, "tokenizer_name_or_path": str(m / "ok"), "hidden_size": 130, "num_attention_heads": 4,
        **FAST}), ["hidden_size 130", "num_attention_heads"]),
    "nan_loss": (lambda t, m: ("pretrain", {
        "dataset_name": DOCS, "tokenizer_name_or_path": str(m / "ok"), "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "learning_rate": 1.0e+38, "warmup_steps": 4, "max_steps": 30,
        "logging_steps": 1, "save_steps": 1, "per_device_train_batch_size": 4, "report_to": "none"}),
        ["loss became", "last good checkpoint"]),
}


# One case per stage script runs as a user would (a fresh process: no traceback, exit code 2); the others call the
# same entry point (`llm_recipes.config.run`) in this process, which saves a ~7 s interpreter start each.
AS_A_PROCESS = {"malformed_jsonl", "impossible_model_shape", "chat_data_without_template",
                "preference_chosen_equals_rejected"}


def run_stage(stage, path, capsys):
    """(exit code, stderr) of a stage script: in a subprocess, or through its entry point here."""
    module = importlib.import_module(f"llm_recipes.scripts.{stage}")
    with pytest.raises(SystemExit) as exited:  # a run that succeeds or raises anything else fails the test
        run(module.main, lambda: parse(module.ARGUMENTS, ["--config", str(path)]))
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_matrix(case, models, tmp_path, capsys):
    stage, recipe = CASES[case][0](tmp_path, models)
    out = tmp_path / "out"
    recipe.setdefault("output_dir", str(out))
    if case == "output_dir_of_another_run":  # a finished run of other data already lives there
        out.mkdir()
        (out / "run_identity.json").write_text(json.dumps({"dataset_name": "other.jsonl"}))
        (out / "report.json").write_text("{}")
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    if case in AS_A_PROCESS:
        result = run_script(f"scripts/{stage}.py", "--config", str(path))
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = run_stage(stage, path, capsys)
    assert code == 2, stderr[-3000:]
    errors = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    for needle in CASES[case][1]:
        assert needle in errors[0], errors[0]
    if case == "output_dir_of_another_run":
        assert (out / "report.json").read_text() == "{}", "the other run's outputs must be left alone"
    else:
        assert not (out / "report.json").exists()
    if case == "nan_loss":  # training stopped at the first NaN; checkpoints before it are kept, none after
        checkpoints = sorted(out.glob("checkpoint-*"))
        assert checkpoints and not (out / "model.safetensors").exists()
        assert all("nan" not in json.dumps(json.load(open(c / "trainer_state.json"))["log_history"]).lower()
                   for c in checkpoints)


def test_unknown_cli_key_and_bad_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_step: 3\n")
    result = run_script("scripts/sft.py", "--config", str(bad))
    assert result.returncode == 2 and "unknown key 'max_step' (did you mean 'max_steps'?)" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed\n")
    result = run_script("scripts/corpus.py", "--config", str(broken))
    assert result.returncode == 2 and "not valid YAML" in result.stderr
