"""What the evaluation stage measures beyond lm-eval's own metrics: the compute dtype a device does well, bits per
character (tokenizer-independent) from lm-eval's bits per byte, and generation speed in characters per second."""

import json
import time

TEXT_TASKS = ("bits_per_char_ja", "bits_per_char_en")  # loglikelihood_rolling tasks over {"text": ...} files


def compute_dtype(device, requested="auto"):
    """`auto`: bfloat16 where the hardware multiplies in it (a CUDA card with bf16; a CPU with AVX512-BF16 or AMX,
    which oneDNN reports), else float32. Anything else is passed through (float32 is what exactness tests use)."""
    if requested != "auto":
        return requested
    import torch

    if str(device).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


def text_counts(path, limit=None):
    """(characters, UTF-8 bytes) of the `text` of the first `limit` records of a JSONL file."""
    chars = nbytes = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(line for line in f if line.strip()):
            if limit is not None and n >= limit:
                break
            text = json.loads(line)["text"]
            chars, nbytes = chars + len(text), nbytes + len(text.encode("utf-8"))
    return chars, nbytes


def bits_per_char(bits_per_byte, path, limit=None):
    """lm-eval's bits_per_byte is -Σ log2 p / Σ bytes; × Σ bytes / Σ characters gives bits per character, which does
    not depend on the tokenizer (an expanded vocabulary spends fewer tokens, not fewer characters)."""
    chars, nbytes = text_counts(path, limit)
    return bits_per_byte * nbytes / chars


def generation_speed(model_dir, prompts_path, max_new_tokens=64, dtype="float32", device="cpu", text_key="text",
                     reference_text=None):
    """Greedy continuation of each prompt (batch 1, as a chat user waits for it): new characters per second over all
    prompts, with tokens per second and characters per token beside it. A small model's own continuations vary in
    how many characters its tokens hold (a loop of 「。」 or of ASCII), so with `reference_text` (held-out Japanese,
    JSONL {text}) the speed of writing real Japanese is also given: decoding tokens/s x the tokenizer's characters
    per token on that text (`ja_text_chars_per_second`), which is what a vocabulary changes."""
    import torch

    from llm_recipes.generation import generate, load

    model, tokenizer = load(model_dir)
    model.to(device=device, dtype=getattr(torch, dtype))
    with open(prompts_path, encoding="utf-8") as f:
        prompts = [json.loads(line)[text_key] for line in f if line.strip()]
    generate(model, tokenizer, prompts[:1], max_new_tokens=4, batch_size=1)  # warm-up
    chars = tokens = 0
    start = time.time()
    for prompt in prompts:
        out = generate(model, tokenizer, [prompt], max_new_tokens=max_new_tokens, batch_size=1, strip=False)[0][0]
        chars, tokens = chars + len(out.text), tokens + len(out.token_ids)
    wall = time.time() - start
    result = {"prompts": len(prompts), "new_characters": chars, "new_tokens": tokens, "wall_s": round(wall, 2),
              "chars_per_second": chars / wall, "tokens_per_second": tokens / wall,
              "chars_per_new_token": chars / max(tokens, 1), "dtype": dtype}
    if reference_text:
        with open(reference_text, encoding="utf-8") as f:
            texts = [json.loads(line)[text_key] for line in f if line.strip()]
        per_token = sum(map(len, texts)) / sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
        result.update(reference_chars_per_token=per_token, ja_text_chars_per_second=tokens / wall * per_token)
    return result
