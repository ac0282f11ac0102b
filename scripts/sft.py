"""SFT stage: instruction-tune with TRL's SFTTrainer, through the chat template, with the loss on assistant (or
completion) tokens only; full fine-tuning or LoRA (PEFT).

    accelerate launch --config_file configs/cpu.yaml scripts/sft.py --config recipes/tiny/sft.yaml
    python scripts/sft.py --config recipes/tiny/sft.yaml --use_peft true --lora_r 8 --merge_adapter true

Data: `messages`, `prompt`/`completion` or Dolly (`instruction`/`context`/`response`), detected by columns; a mixture
of sources with per-source weights via `dataset_mixture`. The tokenizer's EOS becomes the chat template's end-of-turn
token (`eos_token`); TRL writes it into the model and generation configs, so the tuned model stops after its reply.
Re-running on an output_dir with checkpoints resumes from the last one.

`batch_layout` (padding | padding_free | packed) arranges the same examples per micro-batch three ways, so loss tokens
per optimizer step are equal across layouts (training/batch_layouts.py; recipes/packing-vs-padding); each step's loss
tokens, real tokens and computed tokens go to <output_dir>/layout_steps.jsonl.
"""

import time
from dataclasses import dataclass, field

from trl import ModelConfig, SFTConfig

from llm_recipes.config import check_choices, parse, run
from llm_recipes.data import load_records, load_sources
from llm_recipes.errors import RecipeError
from llm_recipes.generation import generation_check
from llm_recipes.reporting.report import loss_summary
from llm_recipes.tokenizer import CHATML_PATH
from llm_recipes.training.batch_layouts import LAYOUTS, LayoutCollator, LayoutStats, read_steps, summarize_steps
from llm_recipes.training.common import DataArguments, finish_stage, load_model, start_stage, train_and_save
from llm_recipes.training.data_formats import for_sft


@dataclass
class SFTScriptArguments(DataArguments):
    generation_eval_dataset: str | None = field(default=None, metadata={
        "result": False, "help": "held-out prompts (`messages` ending with a user turn, optional `answer`)"})
    max_new_tokens: int = 16
    on_too_long: str = field(default="truncate", metadata={
        "help": "a conversation longer than max_length: truncate (TRL keeps the start) | drop | error; counted"})
    batch_layout: str | None = field(default=None, metadata={
        "help": "padding | padding_free | packed (same examples per micro-batch, see llm_recipes/training/batch_layouts.py); unset: "
                "TRL's own collator (packing / padding_free keys)"})
    merge_adapter: bool = field(default=False, metadata={
        "result": False, "help": "LoRA: also save the merged model to <output>/merged"})


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
    from trl import SFTTrainer

    start = time.time()
    if not start_stage(args, training_args, model_args):  # a dry run: the plan is printed
        return None
    if training_args.chat_template_path == "chatml":  # the package's ChatML template (with {% generation %} tags)
        training_args.chat_template_path = CHATML_PATH
    check_choices(args, on_too_long=("truncate", "drop", "error"))
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    if not tokenizer.chat_template and not training_args.chat_template_path:
        raise RecipeError(f"model_name_or_path: {model_args.model_name_or_path} has no chat template; set "
                          "chat_template_path")
    name = args.dataset_name or "dataset_mixture"
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                         lambda ds, src: for_sft(ds, src, args.on_bad_record), training_args.seed,
                                         args.subset_seed)
    dataset, too_long = handle_too_long(dataset, tokenizer, training_args.max_length, args.on_too_long, name)
    collator, callbacks = None, []
    if args.batch_layout:
        check_choices(args, batch_layout=LAYOUTS)
        if training_args.packing or training_args.padding_free:
            raise RecipeError("batch_layout: set packing and padding_free to false (batch_layout arranges the batches)")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        collator = LayoutCollator(args.batch_layout, pad_id, training_args.pad_to_multiple_of)
        callbacks = [LayoutStats(collator, training_args.output_dir, training_args.gradient_accumulation_steps)]

    trainer, result, checkpoint = train_and_save(SFTTrainer, (args, training_args, model_args), model=model,
                                                 train_dataset=dataset, processing_class=tokenizer,
                                                 data_collator=collator, callbacks=callbacks)
    if not trainer.is_world_process_zero():
        return None
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
        metrics.update(generation_check(trainer.model, trainer.processing_class, prompts, args.max_new_tokens,
                                        training_args.bf16))
    return finish_stage("sft", trainer, metrics, args, training_args, model_args, start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
