"""The one place the repository generates text: tokenize (raw text or a chat through the model's template), call
transformers' `generate` in left-padded batches, decode only the new tokens. Used by the SFT/DPO EOS check, the EOS
probe, judging (answers and the local judge), pass@k sampling, Self-Instruct, RSO sampling and SliCK."""

from dataclasses import dataclass


@dataclass
class Generation:
    text: str  # the new tokens, decoded without special tokens (stripped unless strip=False)
    token_ids: list  # the new tokens, padding removed
    stopped: bool  # ended with an EOS token of the model's generation config (not cut by max_new_tokens)


def load(model_dir):
    """Model (eval mode) and tokenizer of a local directory, for generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)


def eos_ids(model):
    ids = model.generation_config.eos_token_id
    return set(ids if isinstance(ids, list) else [ids])


def generate(model, tokenizer, prompts, max_new_tokens=64, do_sample=False, temperature=1.0, top_p=1.0,
             num_return_sequences=1, batch_size=16, chat=None, strip=True, bf16=False):
    """Generations for each prompt: a list (one per prompt) of `num_return_sequences` Generation objects.

    A prompt is a string (continued as raw text, no special tokens added) or a list of chat messages (rendered with
    the chat template and the generation prompt). Greedy unless `do_sample`; seed with transformers.set_seed.
    `strip=False` keeps leading whitespace (code completions start with indentation). `bf16` runs a float32 model
    under bfloat16 autocast, as a stage trained with `bf16: true` did (1.6x faster on this CPU, same greedy replies on
    the swallow recipe's 60 held-out prompts)."""
    import contextlib

    import torch

    chat = isinstance(prompts[0], list) if chat is None and prompts else chat
    stop = eos_ids(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # left padding: new tokens line up at the end
    results = []
    try:
        for i in range(0, len(prompts), batch_size):
            batch = prompts[i:i + batch_size]
            if chat:
                texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
                inputs = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
            else:
                inputs = tokenizer(batch, add_special_tokens=False, padding=True, return_tensors="pt")
            inputs = inputs.to(model.device)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if do_sample else \
                {"do_sample": False}
            cast = torch.autocast(model.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with torch.no_grad(), cast:
                out = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=pad,
                                     num_return_sequences=num_return_sequences, **sampling)
            new = out[:, inputs["input_ids"].shape[1]:].tolist()
            for j in range(len(batch)):
                group = []
                for ids in new[j * num_return_sequences:(j + 1) * num_return_sequences]:
                    end = next((k + 1 for k, t in enumerate(ids) if t in stop), len(ids))
                    ids = ids[:end]
                    text = tokenizer.decode(ids, skip_special_tokens=True)
                    group.append(Generation(text.strip() if strip else text, ids, bool(ids) and ids[-1] in stop))
                results.append(group)
    finally:
        tokenizer.padding_side = side
    return results


def generation_check(model, tokenizer, prompts, max_new_tokens=16, bf16=False):
    """`prompts`: records with `messages` (ending in a user turn) and optionally `answer`. Does the model stop at EOS
    (the chat template's end of turn), and does its greedy reply contain the answer? Returns rates + samples."""
    model.eval()
    prompts = list(prompts)  # a datasets.Dataset sliced gives columns, not records
    outputs = generate(model, tokenizer, [r["messages"] for r in prompts], max_new_tokens, chat=True, bf16=bf16)
    stopped = sum(o[0].stopped for o in outputs)
    with_answer = [(r, o[0]) for r, o in zip(prompts, outputs) if r.get("answer")]
    samples = [{"prompt": r["messages"][-1]["content"], "reply": o[0].text} for r, o in zip(prompts[:3], outputs)]
    result = {"generation_prompts": len(prompts), "stops_at_eos": stopped / max(len(prompts), 1), "samples": samples}
    if with_answer:
        result["generation_accuracy"] = sum(r["answer"] in o.text for r, o in with_answer) / len(with_answer)
    return result
