"""SFT stage: instruction-tune with TRL's SFTTrainer, through the chat template, with the loss on assistant (or
completion) tokens only; full fine-tuning or LoRA (PEFT).

    accelerate launch --config_file configs/cpu.yaml scripts/sft.py --config recipes/tiny/sft.yaml
    python scripts/sft.py --config recipes/tiny/sft.yaml --use_peft true --lora_r 8 --merge_adapter true

Data: `messages`, `prompt`/`completion` or Dolly (`instruction`/`context`/`response`), detected by columns; a mixture
of sources with per-source weights via `dataset_mixture`. The tokenizer's EOS becomes the chat template's end-of-turn
token (`eos_token`); TRL writes it into the model and generation configs, so the tuned model stops after its reply.
Re-running on an output_dir with checkpoints resumes from the last one.

`batch_layout` (padding | padding_free | packed) arranges the same examples per micro-batch three ways, so loss tokens
per optimizer step are equal across layouts (recipekit/packing.py; recipes/packing-vs-padding); each step's loss
tokens, real tokens and computed tokens go to <output_dir>/layout_steps.jsonl.
"""

import os
import time
from dataclasses import dataclass, field

from trl import ModelConfig, SFTConfig

from llm_recipes.config import RecipeError, check_choices, parse, run
from llm_recipes.data import load_records, load_sources
from llm_recipes.generation import generation_check
from llm_recipes.reporting.model_card import write_model_card
from llm_recipes.reporting.report import loss_summary, markdown_table, plan, write_report
from llm_recipes.tokenizer import CHATML_PATH
from llm_recipes.training.common import (
    hub_push_target,
    load_model,
    push_to_hub,
    run_identity,
    save_merged,
    train_and_save,
)
from llm_recipes.training.formats import for_sft
from llm_recipes.training.packing import LAYOUTS, LayoutCollator, LayoutStats, read_steps, summarize_steps


@dataclass
class SFTScriptArguments:
    dataset_name: str | None = field(default=None, metadata={"help": "local JSONL/Parquet or a hub dataset id"})
    dataset_split: str = "train"
    dataset_mixture: list[dict] | None = field(default=None, metadata={
        "help": "[{path, weight (fraction kept, may exceed 1 to repeat), split}] instead of dataset_name"})
    generation_eval_dataset: str | None = field(
        default=None, metadata={"help": "held-out prompts (`messages` ending with a user turn, optional `answer`)"})
    max_new_tokens: int = 16
    on_too_long: str = field(default="truncate", metadata={
        "help": "a conversation longer than max_length: truncate (TRL keeps the start) | drop | error; counted"})
    on_bad_record: str = field(default="error", metadata={"help": "error | drop (counted, with an example)"})
    batch_layout: str | None = field(default=None, metadata={
        "help": "padding | padding_free | packed (same examples per micro-batch, see recipekit/packing.py); unset: "
                "TRL's own collator (packing / padding_free keys)"})
    merge_adapter: bool = field(default=False, metadata={"help": "LoRA: also save the merged model to <output>/merged"})
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})
    dry_run: bool = field(default=False, metadata={"help": "check the recipe and print the plan; load nothing"})


ARGUMENTS = (SFTScriptArguments, SFTConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


def handle_too_long(dataset, tokenizer, max_length, rule, name):
    """Count examples longer than max_length (through the chat template) and apply the recipe's rule."""
    if max_length is None or "messages" not in dataset.column_names:
        return dataset, 0
    lengths = [len(tokenizer(tokenizer.apply_chat_template(m, tokenize=False), add_special_tokens=False).input_ids)
               for m in dataset["messages"]]
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        example = f"record {too_long[0] + 1} ({lengths[too_long[0]]} tokens > max_length {max_length})"
        if rule == "error":
            raise RecipeError(f"{name}: {len(too_long)} conversation(s) longer than max_length, e.g. {example}")
        print(f"{len(too_long)} conversation(s) longer than max_length ({rule}), e.g. {example}")
        if rule == "drop":
            dataset = dataset.select([i for i in range(len(dataset)) if i not in set(too_long)])
    return dataset, len(too_long)


def main(args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig):
    from transformers import set_seed
    from trl import SFTTrainer, get_peft_config

    start = time.time()
    if args.dry_run:  # real-scale recipes: parsed and checked offline, nothing downloaded
        print(plan(args, training_args, model_args, hub_push_target(training_args)))
        return None
    set_seed(training_args.seed)
    hub_push_target(training_args)  # no token: stop now, not after training
    if training_args.chat_template_path == "chatml":  # the package's ChatML template (with {% generation %} tags)
        training_args.chat_template_path = CHATML_PATH
    check_choices(args, on_too_long=("truncate", "drop", "error"), on_bad_record=("error", "drop"))
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    if not tokenizer.chat_template and not training_args.chat_template_path:
        raise RecipeError(f"model_name_or_path: {model_args.model_name_or_path} has no chat template; set "
                          "chat_template_path")
    name = args.dataset_name or "dataset_mixture"
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                         lambda ds, src: for_sft(ds, src, args.on_bad_record), training_args.seed)
    dataset, too_long = handle_too_long(dataset, tokenizer, training_args.max_length, args.on_too_long, name)
    collator, callbacks = None, []
    if args.batch_layout:
        check_choices(args, batch_layout=LAYOUTS)
        if training_args.packing or training_args.padding_free:
            raise RecipeError("batch_layout: set packing and padding_free to false (batch_layout arranges the batches)")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        collator = LayoutCollator(args.batch_layout, pad_id, training_args.pad_to_multiple_of)
        callbacks = [LayoutStats(collator, training_args.output_dir, training_args.gradient_accumulation_steps)]

    trainer, result, checkpoint = train_and_save(
        SFTTrainer, training_args.output_dir,
        run_identity(args, training_args, model_args),
        model=model, args=training_args, train_dataset=dataset, processing_class=tokenizer, data_collator=collator,
        callbacks=callbacks, peft_config=get_peft_config(model_args))
    if not trainer.is_world_process_zero():
        return None
    if model_args.use_peft and args.merge_adapter:
        save_merged(trainer.model, trainer.processing_class, os.path.join(training_args.output_dir, "merged"))
    metrics = {"examples": len(dataset), "sources": sources, "bad_records_dropped": bad, "too_long": too_long,
               "on_too_long": args.on_too_long, "steps": result.global_step, "resumed_from": checkpoint,
               "world_size": training_args.world_size, "train_loss": result.training_loss, "lora": model_args.use_peft,
               **loss_summary(trainer.state.log_history), "eos_token": trainer.processing_class.eos_token}
    if args.batch_layout:  # throughput from the steps this process ran (a resumed run ran fewer)
        steps, first = read_steps(training_args.output_dir), int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0
        metrics.update(batch_layout=args.batch_layout, train_runtime_s=result.metrics["train_runtime"],
                       **summarize_steps([r for r in steps if r["step"] > first], result.metrics["train_runtime"]))
        metrics["loss_tokens_per_step"] = [r["loss_tokens"] for r in steps]  # all steps, resumed or not
    if args.generation_eval_dataset:
        prompts = load_records(args.generation_eval_dataset, required_keys=["messages"])
        metrics.update(generation_check(trainer.model, trainer.processing_class, prompts, args.max_new_tokens))
    print(markdown_table(["metric", "value"], [(k, v) for k, v in metrics.items() if k != "loss_tokens_per_step"]))
    for out in [training_args.output_dir] + ([os.path.join(training_args.output_dir, "merged")]
                                            if model_args.use_peft and args.merge_adapter else []):
        write_model_card(out, "sft", metrics, (args, training_args, model_args), model_args.model_name_or_path,
                         [args.dataset_name, *(m["path"] for m in args.dataset_mixture or [])])
    report = write_report(training_args.output_dir, "sft", metrics, wall_time_s=time.time() - start)
    push_to_hub(trainer)
    return report


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
