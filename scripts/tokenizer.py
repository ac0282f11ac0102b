"""Tokenizer stage: train a BPE or Unigram tokenizer with `tokenizers`, save it as a Hugging Face tokenizer, measure it.

    python scripts/tokenizer.py --config recipes/tiny/tokenizer.yaml [--key value ...]
    python scripts/tokenizer.py --config recipes/tokenizer-vocab-sweep/tokenizer.yaml   # several vocabulary sizes

Models: `bytelevel_bpe` (GPT-2 / Llama-3 style: no unknown characters by construction) and `bpe` / `unigram` over
Metaspace with byte fallback (Llama-2 / SentencePiece / Swallow style: a character outside the vocabulary becomes UTF-8
byte tokens). Text is streamed in batches from JSONL, Parquet or a hub dataset, so memory does not grow with the corpus.
The saved tokenizer has BOS/EOS/PAD, the chat markers and a ChatML chat template with {% generation %} tags (so SFT can
train on assistant tokens only). Metrics on `eval_path` (held-out text) go to report.json and report.md.
"""

import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import check_choices, parse, run
from llm_recipes.data import iter_texts
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.tokenizer import CHATML_TEMPLATE
from llm_recipes.tokenizer.metrics import measure, plot_vocab_sweep

# Runs of one Japanese script; merges then never cross kanji/hiragana/katakana boundaries (a cheap stand-in for
# morphological pre-splitting, which keeps particles such as は/を from fusing with the word after them).
SCRIPT_RUNS = r"\p{Han}+|\p{Hiragana}+|\p{Katakana}+|[^\p{Han}\p{Hiragana}\p{Katakana}]+"
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


@dataclass
class TokenizerArguments:
    input_path: str = field(metadata={"help": "JSONL/Parquet file, folder or glob, or a hub dataset id"})
    output_dir: str = field(metadata={"help": "where the Hugging Face tokenizer is saved"})
    text_key: str = "text"
    dataset_config: str | None = field(default=None, metadata={"help": "hub dataset configuration (subset) name"})
    model: str = field(default="bytelevel_bpe", metadata={"help": "bytelevel_bpe | bpe | unigram"})
    vocab_size: int = 2000
    vocab_sizes: list[int] | None = field(default=None, metadata={"help": "a sweep: one tokenizer per size"})
    min_frequency: int = 2
    max_token_length: int | None = field(default=None, metadata={"help": "longest token, in characters"})
    split_scripts: bool = field(default=True, metadata={"help": "pre-split text into runs of one Japanese script"})
    split_digits: bool = field(default=False, metadata={"help": "every digit its own token"})
    max_documents: int | None = field(default=None, metadata={"help": "train on the first N documents only"})
    batch_size: int = 1000
    bos_token: str = "<|begin_of_text|>"
    eos_token: str = "<|endoftext|>"
    pad_token: str = "<|pad|>"
    unk_token: str = "<unk>"
    additional_special_tokens: list[str] = field(default_factory=lambda: ["<|im_start|>", "<|im_end|>"])
    chat_template: str = field(default=CHATML_TEMPLATE, metadata={"help": "Jinja chat template"})
    model_max_length: int = 2048
    eval_path: str | None = field(default=None, metadata={"help": "held-out text for the metrics (default: input)"})
    eval_max_documents: int = 5000
    dry_run: bool = field(default=False, metadata={"help": "check the recipe and print the plan; train nothing"})


ARGUMENTS = (TokenizerArguments,)  # the dataclasses a recipe file for this stage fills


def check(args):
    check_choices(args, model=("bytelevel_bpe", "bpe", "unigram"))
    specials = special_tokens(args)
    for marker in ("<|im_start|>", "<|im_end|>"):
        if marker in args.chat_template and marker not in specials:
            raise RecipeError(f"chat_template uses {marker}, which is not among the special tokens")
    floor = len(specials) + 256
    for size in args.vocab_sizes or [args.vocab_size]:
        if size < floor:
            raise RecipeError(f"vocab_size: {size} is smaller than the byte alphabet plus special tokens ({floor})")


def special_tokens(args):
    extra = [args.unk_token] if args.model != "bytelevel_bpe" else []
    return [args.bos_token, args.eos_token, args.pad_token, *extra, *args.additional_special_tokens]


def batches(args):
    batch, n = [], 0
    for text in iter_texts(args.input_path, args.text_key, args.max_documents, args.dataset_config):
        batch.append(text)
        n += 1
        if len(batch) == args.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
    if n == 0:
        raise RecipeError(f"input_path: {args.input_path} has no text to train on")


def with_byte_fallback(tok):
    """Add the 256 <0xXX> byte pieces to a trained Metaspace model's vocabulary and switch byte fallback on."""
    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    model = spec["model"]
    if model["type"] == "BPE":
        for piece in BYTE_TOKENS:
            model["vocab"].setdefault(piece, len(model["vocab"]))
    else:  # Unigram: vocab is a list of [piece, log-prob]
        floor = min(score for _, score in model["vocab"]) - 1.0
        known = {piece for piece, _ in model["vocab"]}
        model["vocab"] += [[piece, floor] for piece in BYTE_TOKENS if piece not in known]
    model["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


def train(args, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = special_tokens(args)
    splits = [pre_tokenizers.Split(Regex(SCRIPT_RUNS), behavior="isolated")] if args.split_scripts else []
    splits += [pre_tokenizers.Digits(individual_digits=True)] if args.split_digits else []
    if args.model == "bytelevel_bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([*splits, pre_tokenizers.ByteLevel(add_prefix_space=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=args.min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      max_token_length=args.max_token_length, show_progress=False)
    else:  # Metaspace (spaces become ▁, no whitespace assumption otherwise) + byte fallback
        metaspace = dict(replacement="▁", prepend_scheme="never", split=True)
        tok = Tokenizer(models.BPE(unk_token=args.unk_token) if args.model == "bpe" else models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Sequence([*splits, pre_tokenizers.Metaspace(**metaspace)])
        tok.decoder = decoders.Sequence([decoders.Metaspace(**metaspace), decoders.ByteFallback(), decoders.Fuse()])
        size = vocab_size - 256  # room for the byte pieces
        if args.model == "bpe":
            trainer = trainers.BpeTrainer(vocab_size=size, min_frequency=args.min_frequency, special_tokens=specials,
                                          max_token_length=args.max_token_length, show_progress=False)
        else:
            trainer = trainers.UnigramTrainer(vocab_size=size, special_tokens=specials, unk_token=args.unk_token,
                                              max_piece_length=args.max_token_length or 16, show_progress=False)
    tok.train_from_iterator(batches(args), trainer)
    return tok if args.model == "bytelevel_bpe" else with_byte_fallback(tok)


def build(args, vocab_size, output_dir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train(args, vocab_size), bos_token=args.bos_token, eos_token=args.eos_token,
        pad_token=args.pad_token, unk_token=args.unk_token if args.model != "bytelevel_bpe" else None,
        additional_special_tokens=args.additional_special_tokens, model_max_length=args.model_max_length)
    tokenizer.chat_template = args.chat_template
    tokenizer.save_pretrained(output_dir)
    return AutoTokenizer.from_pretrained(output_dir)  # measure what was saved, as users will load it


def main(args: TokenizerArguments):
    start = time.time()
    check(args)
    sizes = args.vocab_sizes or [args.vocab_size]
    if args.dry_run:
        print(f"would train {args.model} tokenizer(s) of vocabulary {sizes} on {args.input_path} "
              f"(text_key {args.text_key}) into {args.output_dir}; special tokens {special_tokens(args)}")
        return None
    if next(iter_texts(args.input_path, args.text_key, 1, args.dataset_config), None) is None:
        raise RecipeError(f"input_path: {args.input_path} has no text to train on")
    clear_report(args.output_dir)
    eval_texts = list(iter_texts(args.eval_path or args.input_path, args.text_key, args.eval_max_documents))
    rows, results = [], {}
    for size in sizes:
        t0 = time.time()
        out = args.output_dir if len(sizes) == 1 else os.path.join(args.output_dir, f"vocab_{size}")
        tokenizer = build(args, size, out)
        results[size] = {"train_seconds": round(time.time() - t0, 2), **measure(tokenizer, eval_texts)}
        m = results[size]
        rows.append([size, m["vocab_size"], m["chars_per_token"].get("ja", "-"), m["chars_per_token"].get("en", "-"),
                     m["byte_fallback_rate"], m["kanji_coverage"], m["round_trip_exact"], m["train_seconds"]])
    table = markdown_table(["target vocab", "vocab", "ja chars/token", "en chars/token", "byte-fallback rate",
                            "kanji coverage", "round-trip exact", "train s"], rows)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(f"# Tokenizer report ({args.model}, eval: {args.eval_path or args.input_path})\n\n{table}\n")
    if len(sizes) > 1:
        plot_vocab_sweep(os.path.join(args.output_dir, "vocab_sweep.png"), results)
    print(table)
    metrics = results[sizes[0]] if len(sizes) == 1 else {"sweep": results}
    return write_report(args.output_dir, "tokenizer", {"model": args.model, **metrics}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
