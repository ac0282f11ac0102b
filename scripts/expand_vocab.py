"""Vocabulary expansion (Swallow-style): add Japanese tokens learned on our corpus to an existing model's tokenizer,
resize its embeddings and LM head, and initialise each new row as the mean of the rows of the pieces the old tokenizer
split it into. The output directory is a model + tokenizer ready for continued pretraining (scripts/pretrain.py with
`model_name_or_path`).

    python scripts/expand_vocab.py --config recipes/vocab-expansion/expand.yaml

Works on any local causal LM with a fast tokenizer (Llama family included); the new tokens are added as regular added
tokens, so the old tokenizer's model, merges and ids are untouched and text without them encodes as before.
"""

import time
from dataclasses import dataclass, field

from llm_recipes.config import RecipeError, parse, run
from llm_recipes.data import iter_texts
from llm_recipes.reporting.model_card import write_model_card
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.scripts import tokenizer as tokenizer_stage
from llm_recipes.tokenizer.metrics import JAPANESE, language_of
from llm_recipes.training.common import require_model_dir


@dataclass
class ExpandArguments:
    model_name_or_path: str = field(metadata={"help": "local model directory with its tokenizer"})
    input_path: str = field(metadata={"help": "Japanese text (JSONL/Parquet file or folder) to learn tokens from"})
    output_dir: str = field(metadata={"help": "where the expanded model + tokenizer go"})
    text_key: str = "text"
    num_new_tokens: int = 1000
    candidate_vocab_size: int = field(default=8000, metadata={"help": "size of the tokenizer trained for candidates"})
    min_frequency: int = 2
    max_token_length: int = 8
    eval_path: str | None = field(default=None, metadata={"help": "held-out text for chars/token (default: input)"})
    max_documents: int | None = None
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})


ARGUMENTS = (ExpandArguments,)  # the dataclasses a recipe file for this stage fills


def learn_new_tokens(args, old_tokenizer):
    """Train a byte-fallback BPE on the corpus; keep its Japanese pieces (in merge order, i.e. most frequent first)
    that the old tokenizer splits into more than one token."""
    targs = tokenizer_stage.TokenizerArguments(
        input_path=args.input_path, output_dir=args.output_dir, text_key=args.text_key, model="bpe",
        vocab_size=args.candidate_vocab_size, min_frequency=args.min_frequency,
        max_token_length=args.max_token_length, max_documents=args.max_documents)
    trained = tokenizer_stage.train(targs, args.candidate_vocab_size)
    old_vocab = old_tokenizer.get_vocab()
    pieces = sorted(trained.get_vocab().items(), key=lambda kv: kv[1])
    sample = list(iter_texts(args.input_path, args.text_key, 2000))
    new = []
    for piece, _ in pieces:
        if (len(piece) < 2 or "▁" in piece or piece.startswith("<") or piece in old_vocab
                or len(JAPANESE.findall(piece)) != len(piece)):
            continue
        if len(count(old_tokenizer, piece)) > 1 and saving(old_tokenizer, piece, sample) > 0:
            new.append(piece)
        if len(new) == args.num_new_tokens:
            break
    return new


def count(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def saving(old_tokenizer, piece, texts):
    """Tokens saved on `texts` by adding `piece` as an added token (the text is then split on it before the old
    tokenizer runs, which can also cost tokens where the piece straddles better old tokens)."""
    saved = 0
    for text in texts:
        if piece in text:
            parts = text.split(piece)
            saved += len(count(old_tokenizer, text)) - (
                sum(len(count(old_tokenizer, p)) for p in parts if p) + len(parts) - 1)
    return saved


def init_new_rows(model, old_tokenizer, new_tokenizer, new_tokens):
    """Each new embedding (and untied LM-head) row = mean of the rows of the old pieces of its string."""
    import torch

    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is None or head.weight.data_ptr() == emb.data_ptr()
    with torch.no_grad():
        for piece in new_tokens:
            new_id = new_tokenizer.convert_tokens_to_ids(piece)
            old_ids = old_tokenizer(piece, add_special_tokens=False)["input_ids"]
            emb[new_id] = emb[old_ids].mean(dim=0)
            if not tied:
                head.weight[new_id] = head.weight[old_ids].mean(dim=0)


def chars_per_token(tok, texts):
    chars = sum(len(t) for t in texts)
    return round(chars / max(sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts), 1), 3)


def main(args: ExpandArguments):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.time()
    model_dir = require_model_dir(args.model_name_or_path, allow_pickle=args.allow_pickle_weights)
    old_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    new_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if model.get_input_embeddings().num_embeddings < len(old_tokenizer):
        raise RecipeError(f"model_name_or_path: {model_dir}: tokenizer has {len(old_tokenizer)} tokens but the "
                          f"embedding only {model.get_input_embeddings().num_embeddings}")
    clear_report(args.output_dir)
    new_tokens = learn_new_tokens(args, old_tokenizer)
    if not new_tokens:
        raise RecipeError(f"input_path: no Japanese token in {args.input_path} is missing from the old vocabulary")
    new_tokenizer.add_tokens(new_tokens)
    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    init_new_rows(model, old_tokenizer, new_tokenizer, new_tokens)
    model.save_pretrained(args.output_dir)
    new_tokenizer.save_pretrained(args.output_dir)

    texts = [t for t in iter_texts(args.eval_path or args.input_path, args.text_key, 2000) if language_of(t) == "ja"]
    before, after = chars_per_token(old_tokenizer, texts), chars_per_token(new_tokenizer, texts)
    metrics = {"old_vocab_size": len(old_tokenizer), "new_vocab_size": len(new_tokenizer),
               "new_tokens": len(new_tokens), "examples": new_tokens[:20],
               "ja_chars_per_token_before": before, "ja_chars_per_token_after": after}
    print(markdown_table(["metric", "value"], list(metrics.items())))
    write_model_card(args.output_dir, "expand_vocab", metrics, (args,), args.model_name_or_path, [args.input_path])
    return write_report(args.output_dir, "expand_vocab", metrics, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
