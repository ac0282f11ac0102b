"""Pretraining stage: a decoder built from config (Llama-style by default; GPT-2, Mixtral / Qwen-MoE and Mamba families
for ablations) or continued from a saved model, trained with transformers' Trainer on documents packed into fixed
blocks with EOS between them.

    accelerate launch --config_file configs/cpu.yaml scripts/pretrain.py --config recipes/tiny/pretrain.yaml
    python scripts/pretrain.py --config recipes/ja-1b/pretrain.yaml --dry_run true   # meta device: shapes, counts

Data stages (`data_stages`: [{dataset_name or datasets: [{path, weight}], max_steps or max_tokens, block_size}]) train
one after another from the previous stage's weights (curricula: English + code then Japanese, QA before documents, short
blocks before long ones); a stage's datasets are packed apart and their blocks interleaved by weight. The log carries
tokens seen, tokens/s, FLOPs per token and MFU against `peak_tflops`. Re-running on an output_dir that holds checkpoints
resumes from the last one. `objective: ul2` (with `ul2: {denoisers}`) trains on UL2's mixture of denoisers through a data
collator (llm_recipes.training.ul2); `token_selection` is Rho-1's selective loss.
"""

import math
import os
import time
from dataclasses import dataclass, field

from transformers import TrainingArguments

from llm_recipes.config import parse, run
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import loss_summary, read_report
from llm_recipes.training.common import claim_output_dir, finish_stage, require_model_dir, start_stage, train_resuming
from llm_recipes.training.modeling import (
    ThroughputCallback,
    count_parameters,
    device_peak_tflops,
    fit_hidden_size,
    flops_per_token,
    head_flops_per_token,
)
from llm_recipes.training.plan import print_plan
from llm_recipes.training.pretraining import (
    BlockTrainer,
    SelectiveTrainer,
    UL2Trainer,
    VocabOnly,
    build_model,
    check_shape,
    stage_training_args,
)
from llm_recipes.training.recall_target import recall_target
from llm_recipes.training.token_blocks import characters_per_token, stage_blocks
from llm_recipes.training.token_selection import check_token_selection, selection_summary
from llm_recipes.training.ul2 import UL2Collator, add_missing_tokens, check_objective, required_tokens, ul2_summary


@dataclass
class PretrainArguments:
    tokenizer_name_or_path: str = field(metadata={"help": "tokenizer directory (the tokenizer stage's output)"})
    dataset_name: str | None = field(default=None, metadata={"help": "local JSONL/Parquet file or folder, or hub id"})
    data_stages: list[dict] | None = field(default=None, metadata={
        "help": "[{dataset_name | datasets: [{path, weight, split, config, text_key}], max_steps | max_tokens, "
                "block_size}] in order"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "continue pretraining from this model"})
    dataset_split: str = "train"
    dataset_config: str | None = field(default=None, metadata={"help": "hub dataset configuration (subset) name"})
    text_key: str = "text"
    vocab_size: int | None = field(default=None, metadata={"help": "--dry_run without the tokenizer on disk"})
    block_size: int = 128
    validation_fraction: float = 0.05
    # model family and shape (transformers names), used when training from scratch
    architecture: str = field(default="llama", metadata={"help": "llama | gpt2 | mixtral | qwen2_moe | mamba"})
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    hidden_act: str = field(default="silu", metadata={"help": "llama: silu (SwiGLU) | gelu (GeGLU) | relu (ReGLU)"})
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    num_experts: int = 4
    num_experts_per_tok: int = 2
    target_non_embedding_parameters: int | None = field(
        default=None, metadata={"help": "choose hidden_size for this budget at the given depth (depth x width)"})
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa | eager | flash_attention_2 | ..."})
    peak_tflops: float | None = field(default=None, metadata={
        "result": False, "help": "per-device peak for MFU (default: a GPU's datasheet bf16 peak, or this CPU's measured matmul peak)"})
    match_characters: str | None = field(default=None, metadata={
        "help": "a finished pretrain output_dir: train until as many characters as it saw (equal-text arms with "
                "different tokenizers); overrides max_steps"})
    dry_run: bool = field(default=False, metadata={
        "result": False, "help": "build on the meta device, print shapes; train nothing"})
    allow_pickle_weights: bool = field(default=False, metadata={
        "result": False, "help": "load *.bin weights (can run code)"})
    token_selection: dict | None = field(default=None, metadata={
        "help": "Rho-1 selective LM: {reference_model: dir, ratio: share of tokens (top excess loss) in the loss}"})
    stop_at_recall: dict | None = field(default=None, metadata={
        "help": "{dataset_name: held-out prompt/completion JSONL, min_recall, every_steps}: stop once greedy in-context "
                "recall reaches min_recall (a base for recipes/packing-vs-padding); max_steps stays the bound"})
    objective: str = field(default="causal", metadata={"help": "causal | ul2 (UL2 mixture of denoisers, key ul2)"})
    ul2: dict | None = field(default=None, metadata={
        "help": "{denoisers: [{mode: R|S|X, mean_span, corruption_rate, weight}]} (llm_recipes.training.ul2)"})

    def __post_init__(self):  # checked when the recipe is parsed, before anything loads
        self.ul2_denoisers = check_objective(self.objective, self.ul2, self.token_selection)


ARGUMENTS = (PretrainArguments, TrainingArguments)  # the dataclasses a recipe file for this stage fills


def load_tokenizer(args):
    """The tokenizer stage's output; a dry run without it on disk needs only vocab_size."""
    from transformers import AutoTokenizer

    if args.dry_run and not os.path.isdir(args.tokenizer_name_or_path):
        if not args.vocab_size:
            raise RecipeError("vocab_size: needed for --dry_run when the tokenizer is not on disk")
        return VocabOnly(args.vocab_size)
    return AutoTokenizer.from_pretrained(
        require_model_dir(args.tokenizer_name_or_path, "tokenizer_name_or_path", "tokenizer_config.json"))


def matched_characters(folder):
    seen = (read_report(folder) or {}).get("characters_seen")
    if not isinstance(seen, (int, float)):
        raise RecipeError(f"match_characters: {folder} has no finished pretraining report with characters_seen")
    return seen


def train_stage(args, training_args, tokenizer, model, stage, output_dir, peak):
    """One data stage from the current weights: its blocks and steps (max_steps, max_tokens or match_characters), the
    trainer of the objective (causal, Rho-1, UL2), trained by the shared train_resuming in output_dir."""
    from transformers import default_data_collator

    block_size = stage.get("block_size", args.block_size)
    train, held_out = stage_blocks(args, stage, tokenizer, block_size, training_args)
    tokens_per_step = (training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
                       * training_args.world_size * block_size)
    max_steps = math.ceil(stage["max_tokens"] / tokens_per_step) if "max_tokens" in stage else \
        stage.get("max_steps", training_args.max_steps)
    chars_per_token = characters_per_token(args, stage, tokenizer)
    if args.match_characters:  # as many characters as another run saw (a different tokenizer: other token counts)
        max_steps = math.ceil(matched_characters(args.match_characters) / (chars_per_token * tokens_per_step))
        print(f"match_characters: {max_steps} steps of {tokens_per_step} tokens at {chars_per_token:.3f} "
              f"characters per token")
    counts = count_parameters(model)
    layers = getattr(model.config, "num_hidden_layers", 1)
    hidden = getattr(model.config, "hidden_size", 0)
    throughput = ThroughputCallback(tokens_per_step, flops_per_token(counts["active_non_embedding_parameters"], layers,
                                                                     hidden, block_size), peak,
                                    training_args.world_size, head_flops_per_token(model))
    callbacks = [throughput] + ([recall_target(args.stop_at_recall, tokenizer)] if args.stop_at_recall else [])
    selection = {}
    if args.token_selection:  # Rho-1: a reference model scores every token; the loss keeps the top `ratio` share
        from transformers import AutoModelForCausalLM

        reference = require_model_dir(args.token_selection["reference_model"], "token_selection.reference_model")
        selection = {"reference_model": AutoModelForCausalLM.from_pretrained(reference),
                     "ratio": args.token_selection["ratio"]}
    collator = UL2Collator(tokenizer, args.ul2_denoisers, block_size, training_args.seed,
                           training_args.process_index) if args.ul2_denoisers else default_data_collator
    trainer, result, checkpoint = train_resuming(
        SelectiveTrainer if selection else UL2Trainer if args.ul2_denoisers else BlockTrainer,
        stage_training_args(training_args, output_dir, max_steps), callbacks, model=model, train_dataset=train,
        eval_dataset=held_out, data_collator=collator, processing_class=tokenizer, **selection)
    seen = {"tokens_seen": result.global_step * tokens_per_step, "characters_per_token": chars_per_token}  # every
    return trainer, result, checkpoint, {**throughput.last, **seen}, len(train), callbacks[1:]  # step, not the last log


def main(args: PretrainArguments, training_args: TrainingArguments):
    start = time.time()
    tokenizer = load_tokenizer(args)
    if args.target_non_embedding_parameters and not args.model_name_or_path:
        fit_hidden_size(args, tokenizer, args.target_non_embedding_parameters, multiple=args.num_attention_heads * 2)
    check_shape(args)
    check_token_selection(args.token_selection)
    if args.ul2_denoisers and not isinstance(tokenizer, VocabOnly):  # mode tokens, separator, sentinels
        add_missing_tokens(tokenizer, required_tokens(args.ul2_denoisers, max(
            [args.block_size] + [s.get("block_size", args.block_size) for s in args.data_stages or []])))
    if not start_stage(args, training_args, describe=lambda push: f"push to hub: {push or 'no'}"):
        return print_plan(args, training_args, tokenizer)  # a dry run: shapes on the meta device, data-stage plan
    if training_args.torch_compile and not training_args.dataloader_drop_last:
        print("note: torch_compile with a short last batch recompiles for dynamic shapes (measured 0.64x instead of "
              "1.06x on CPU); set dataloader_drop_last: true")
    stages = args.data_stages or [{"dataset_name": args.dataset_name, "max_steps": training_args.max_steps}]
    model = build_model(args, tokenizer)
    counts = count_parameters(model)
    print(f"model: {counts['parameters'] / 1e6:.2f}M parameters ({counts['non_embedding_parameters'] / 1e6:.2f}M "
          f"without embeddings); {len(stages)} data stage(s)")
    same_as_before = ("objective",) if args.objective == "causal" else ()  # runs from before the key still resume
    claim_output_dir((args, training_args), ignore=same_as_before)
    if args.match_characters and len(stages) > 1:
        raise RecipeError("match_characters: needs a single data stage")
    peak, peak_source = device_peak_tflops(args.peak_tflops, training_args.bf16)
    history, steps, tokens, characters, resumed = [], 0, 0, 0.0, None
    for i, stage in enumerate(stages):  # the data curriculum: each stage trains on from the previous one's weights
        out = training_args.output_dir if len(stages) == 1 else os.path.join(training_args.output_dir, f"stage_{i}")
        trainer, result, checkpoint, throughput, n_blocks, targets = train_stage(args, training_args, tokenizer,
                                                                                 model, stage, out, peak)
        model, resumed = trainer.model, resumed or checkpoint
        history += trainer.state.log_history
        steps += result.global_step
        tokens += throughput.get("tokens_seen", 0)
        characters += throughput.get("tokens_seen", 0) * throughput["characters_per_token"]
    eval_loss = trainer.evaluate()["eval_loss"]
    trainer.save_model(training_args.output_dir)
    if not trainer.is_world_process_zero():
        return None
    config = trainer.model.config  # the trained model's real shape (a loaded model's, not the defaults)
    metrics = {**counts, "architecture": config.model_type, "num_hidden_layers": config.num_hidden_layers,
               "hidden_size": config.hidden_size, "vocab_size": config.vocab_size, "train_blocks": n_blocks,
               "block_size": args.block_size, "steps": steps, "tokens_seen": tokens,
               "characters_seen": round(characters), "resumed_from": resumed, "world_size": training_args.world_size,
               "train_loss": result.training_loss, **loss_summary(history), "eval_loss": eval_loss,
               "eval_perplexity": math.exp(min(eval_loss, 50)),
               **{k: throughput.get(k) for k in ("tokens_per_second", "tokens_per_second_steady", "flops_per_token",
                                                   "head_flops_per_token", "mfu", "mfu_steady", "characters_per_token")},
               "peak_tflops": peak, "peak_source": peak_source, "bf16": training_args.bf16,
               **selection_summary(args, training_args.output_dir),
               **ul2_summary(args.ul2_denoisers, trainer.data_collator),
               **({"recall_target_reached_at": targets[0].reached, "recall_history": targets[0].history}
                  if targets else {})}
    return finish_stage("pretrain", trainer, metrics, args, training_args, start=start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
