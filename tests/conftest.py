import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_script(*args, cwd=REPO, timeout=600):
    """Run a script as a user would; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})


@pytest.fixture
def repo():
    return REPO


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tokenizer trained on the tiny corpus and a randomly initialised 2-layer Llama (saved together)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llm_recipes.scripts import tokenizer as tok_stage

    root = tmp_path_factory.mktemp("align") / "model"
    docs = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
    tok_stage.main(tok_stage.TokenizerArguments(input_path=docs, output_dir=str(root), vocab_size=500))
    tok = AutoTokenizer.from_pretrained(root)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id)).save_pretrained(root)
    return root


def tiny_tokenizer_dir(root, vocab_size=500):
    """A tokenizer trained on the tiny corpus (the tokenizer stage, in this process)."""
    from llm_recipes.scripts import tokenizer as tok_stage

    out = os.path.join(str(root), "tokenizer")
    docs = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
    tok_stage.main(tok_stage.TokenizerArguments(input_path=docs, output_dir=out, vocab_size=vocab_size))
    return out


def kill_when(cmd, marker, env, cwd=None, timeout=600):
    """Start `cmd` in its own process group and SIGKILL the whole group once `marker` (e.g. a checkpoint's
    trainer_state.json) exists, as a preempted cluster job dies."""
    import signal
    import time

    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not os.path.exists(marker):
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
