"""Reward models and what is built on them: loading a sequence-classification reward model, prompts for RL from any
data format the stages read, scoring (prompt, completion) pairs, and RSO's statistical rejection sampling.

RSO (Liu et al. 2024, "Statistical Rejection Sampling Improves Preference Optimization", arXiv 2309.06657): responses
drawn from the SFT policy are accepted so that the accepted ones follow the estimated optimal policy
pi*(y|x) ∝ pi_sft(y|x) exp(r(x, y) / beta). Algorithm 1 (as in the paper's Python listing): while fewer than
`num_samples` are accepted, take the highest reward r_max among the remaining candidates and go through them in order,
accepting each with probability exp((r - r_max) / beta) and removing it from the pool once accepted.
"""

import math

from llm_recipes.errors import RecipeError


def load_reward_model(model_args, allow_pickle=False, trust_remote_code=False, training_args=None):
    """A sequence-classification model with one output (the reward) and its tokenizer, from TRL's ModelConfig: an SFT
    model gets a fresh score head; a trained reward model loads as it was saved."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llm_recipes.training.common import model_init_kwargs, require_model_dir

    path = require_model_dir(model_args.model_name_or_path or "", allow_pickle=allow_pickle,
                             revision=model_args.model_revision)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=model_args.model_revision,
                                              trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, trust_remote_code=trust_remote_code, **model_init_kwargs(model_args, training_args))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    return model, tokenizer


def load_trained_reward_model(path, key="reward_model_name_or_path"):
    """A reward model directory saved by scripts/reward.py (or a hub reward model), in eval mode, with its tokenizer."""
    import os

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llm_recipes.training.common import require_model_dir

    if os.path.isfile(os.path.join(path or "", "adapter_config.json")):
        raise RecipeError(f"{key}: {path} holds a LoRA adapter; give the merged reward model ({path}/merged, saved "
                          "by scripts/reward.py with merge_adapter: true)")
    require_model_dir(path or "", key)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    if model.config.num_labels != 1:
        raise RecipeError(f"{key}: {path} has num_labels={model.config.num_labels}; a reward model has 1")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def prompt_of(row, fmt):
    """The prompt of one record: a conversation ending with a user turn, or a plain string."""
    if fmt == "messages":
        messages = row["messages"]
        return messages[:-1] if messages and messages[-1].get("role") == "assistant" else messages
    return row["prompt"]


def to_prompts(dataset, name):
    """Any data the SFT / DPO stages read (messages, prompt/completion, prompt/chosen/rejected, HH transcripts, a
    bare `prompt` column) -> a dataset with one `prompt` column, each prompt once, in first-seen order."""
    import datasets

    from llm_recipes.training.data_formats import detect, for_preference

    columns = dataset.column_names
    if columns == ["prompt"] or ("prompt" in columns and not {"chosen", "completion"} & set(columns)):
        fmt = "prompt"
    else:
        fmt = detect(columns, name)
        if fmt in ("hh", "preference"):
            dataset, fmt = for_preference(dataset, name, "drop")[0], "preference"
        elif fmt == "dolly":
            raise RecipeError(f"{name}: Dolly records hold no chat prompt; use messages or prompt data")
    seen, prompts = set(), []
    for row in dataset:
        prompt = prompt_of(row, fmt)
        key = repr(prompt)
        if not prompt or key in seen:
            continue
        if isinstance(prompt, list) and prompt[-1].get("role") != "user":
            raise RecipeError(f"{name}: a prompt must end with a user turn (got {prompt[-1].get('role')!r})")
        seen.add(key)
        prompts.append(prompt)
    if not prompts:
        raise RecipeError(f"{name}: no prompts")
    return datasets.Dataset.from_dict({"prompt": prompts})


def score(model, tokenizer, prompts, completions, batch_size=16):
    """Reward of each (prompt, completion), rendered as RLOOTrainer renders them for its reward model: a conversation
    through the reward tokenizer's chat template (plain strings concatenated), right-padded, logits[:, 0]."""
    import torch
    from trl.data_utils import apply_chat_template

    texts = []
    for prompt, completion in zip(prompts, completions, strict=True):
        if isinstance(prompt, list):
            reply = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
            texts.append(apply_chat_template({"messages": prompt + reply}, tokenizer)["text"])
        else:
            texts.append(prompt + completion)
    rewards = []
    for i in range(0, len(texts), batch_size):
        inputs = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, padding_side="right",
                           add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            rewards.extend(model(**inputs).logits[:, 0].float().tolist())
    return rewards


def rejection_sample(rewards, num_samples, beta, rng):
    """RSO Algorithm 1: indices of accepted candidates (in acceptance order), at most num_samples. A candidate is
    accepted with probability exp((r - r_max) / beta), r_max the highest reward still in the pool; `rng` is a
    random.Random."""
    if beta <= 0:
        raise RecipeError(f"beta: must be > 0 (got {beta})")
    pool = list(range(len(rewards)))
    accepted = []
    while pool and len(accepted) < num_samples:
        r_max = max(rewards[i] for i in pool)
        kept = []
        for i in pool:
            if len(accepted) < num_samples and rng.random() < math.exp((rewards[i] - r_max) / beta):
                accepted.append(i)
            else:
                kept.append(i)
        pool = kept
    return accepted


def pair_up(accepted, rewards):
    """RSO's pairs from accepted samples taken two at a time in acceptance order (a random pairing): (chosen,
    rejected) = (higher, lower reward); a tie gives no pair."""
    pairs = []
    for a, b in zip(accepted[0::2], accepted[1::2]):
        if rewards[a] != rewards[b]:
            pairs.append((a, b) if rewards[a] > rewards[b] else (b, a))
    return pairs
