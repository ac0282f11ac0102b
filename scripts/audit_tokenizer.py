"""Tokenizer audit stage: how well each tokenizer covers Japanese, the analysis a Swallow-style project starts with.

    python scripts/audit_tokenizer.py --config recipes/swallow-smollm2/audit.yaml

For every tokenizer (`tokenizers`: {label: model or tokenizer directory, .gguf or package:}): the vocabulary's whole
CJK ideographs, hiragana and katakana (tokens that are exactly one such character, a leading space allowed) and its
multi-character Japanese tokens; on held-out Japanese text the share of Japanese characters that fall back to bytes
(split over several tokens or <0xXX> pieces), characters per token and the exact round trip; on English text
characters per token. Published counts of whole CJK ideographs for other models (`references`, default the Swallow
tutorial's Llama 2 / Mistral / Llama 3) sit beside ours. Per-document tokens per character go to report.json, where a
verdict stage pairs them across tokenizers. Writes report.md and report.json.
"""

import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.data import iter_texts
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.tokenizer.metrics import HIRAGANA, JAPANESE, KANJI, KATAKANA, byte_encoded_positions
from llm_recipes.training.common import require_model_dir

SLIDE_CJK_IDEOGRAPHS = {"Llama 2": 700, "Mistral": 1456, "Llama 3": 2314}  # whole CJK ideographs in the vocabulary


@dataclass
class AuditArguments:
    tokenizers: dict = field(metadata={"help": "{label: directory (or .gguf / package:) holding a tokenizer}"})
    eval_path: str = field(metadata={"help": "held-out Japanese text (JSONL/Parquet file or folder)"})
    output_dir: str
    english_eval_path: str | None = None
    text_key: str = "text"
    max_documents: int | None = 2000
    references: dict = field(default_factory=lambda: dict(SLIDE_CJK_IDEOGRAPHS), metadata={
        "help": "{model: whole CJK ideographs in its vocabulary} from elsewhere, shown beside ours"})


ARGUMENTS = (AuditArguments,)


def vocabulary_coverage(tokenizer):
    """Whole kanji / hiragana / katakana tokens (one character, optional leading space) and multi-character
    Japanese tokens, from each id's decoded text."""
    counts = {"whole_cjk_ideographs": 0, "whole_hiragana": 0, "whole_katakana": 0, "japanese_multi_char_tokens": 0}
    for i in range(len(tokenizer)):
        piece = tokenizer.decode([i]).strip()
        if not piece or "\ufffd" in piece:
            continue
        if len(piece) == 1:
            counts["whole_cjk_ideographs"] += bool(KANJI.match(piece))
            counts["whole_hiragana"] += bool(HIRAGANA.match(piece))
            counts["whole_katakana"] += bool(KATAKANA.match(piece))
        elif len(JAPANESE.findall(piece)) == len(piece):
            counts["japanese_multi_char_tokens"] += 1
    return counts


def text_coverage(tokenizer, texts):
    """Share of Japanese characters not inside one whole token, characters per token, per-document tokens per
    character, exact round trip."""
    backend = tokenizer.backend_tokenizer
    ja_chars = split = chars = tokens = exact = 0
    per_document = []
    for text in texts:
        enc = backend.encode(text, add_special_tokens=False)
        positions = byte_encoded_positions(enc, tokenizer)
        japanese = [i for i, c in enumerate(text) if JAPANESE.match(c)]
        ja_chars += len(japanese)
        split += sum(i in positions for i in japanese)
        chars, tokens = chars + len(text), tokens + len(enc.ids)
        per_document.append(len(enc.ids) / max(len(text), 1))
        exact += tokenizer.decode(enc.ids) == text
    return {"japanese_chars_byte_fallback": split / max(ja_chars, 1), "chars_per_token": chars / max(tokens, 1),
            "round_trip_exact": exact / max(len(texts), 1), "tokens_per_char_by_document": per_document}


def main(args: AuditArguments):
    from transformers import AutoTokenizer

    start = time.time()
    if not args.tokenizers:
        raise RecipeError("tokenizers: name at least one {label: directory}")
    clear_report(args.output_dir)
    ja = list(iter_texts(args.eval_path, args.text_key, args.max_documents))
    en = list(iter_texts(args.english_eval_path, args.text_key, args.max_documents)) if args.english_eval_path else []
    results = {}
    for label, path in args.tokenizers.items():
        tokenizer = AutoTokenizer.from_pretrained(require_model_dir(path, f"tokenizers.{label}",
                                                                    "tokenizer_config.json"))
        results[label] = {"vocab_size": len(tokenizer), **vocabulary_coverage(tokenizer),
                          **{f"ja_{k}": v for k, v in text_coverage(tokenizer, ja).items()}}
        if en:
            results[label]["en_chars_per_token"] = text_coverage(tokenizer, en)["chars_per_token"]
    columns = ["vocab_size", "whole_cjk_ideographs", "whole_hiragana", "whole_katakana", "japanese_multi_char_tokens",
               "ja_japanese_chars_byte_fallback", "ja_chars_per_token", "ja_round_trip_exact", "en_chars_per_token"]
    rows = [[label, *[round(r[c], 3) if isinstance(r.get(c), float) else r.get(c, "-") for c in columns]]
            for label, r in results.items()]
    rows += [[f"{model} (published)", "-", count, *["-"] * (len(columns) - 2)]
             for model, count in args.references.items()]
    table = markdown_table(["tokenizer", *columns], rows)
    print(table)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(f"# Tokenizer coverage of Japanese\n\nHeld-out text: {args.eval_path} ({len(ja)} documents)\n\n"
                f"{table}\n")
    return write_report(args.output_dir, "audit", {"tokenizers": results, "references": args.references,
                                                   "ja_documents": len(ja), "en_documents": len(en)},
                        wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
