"""Reward model stage (InstructGPT step 2): TRL's RewardTrainer fits a scalar reward r(x, y) on preference pairs with
the Bradley-Terry loss -log sigmoid(r(x, y_chosen) - r(x, y_rejected)); full fine-tuning or LoRA (PEFT, the score head
trained in full).

    accelerate launch --config_file configs/cpu.yaml scripts/reward.py --config recipes/instructgpt/reward.yaml
    python scripts/reward.py --config recipes/instructgpt-hh/reward.yaml --dry_run true

Data: the pairs scripts/dpo.py reads (`prompt`/`chosen`/`rejected`, plain or conversational, or Anthropic HH
transcripts), one source or a `dataset_mixture`. The model starts from a causal LM (usually the SFT model) with a fresh
one-output score head (AutoModelForSequenceClassification, num_labels=1) and is saved as a standard sequence-
classification directory (safetensors; with LoRA the merged model goes to <output_dir>/merged). The report gives the
pairwise accuracy (share of held-out pairs with r(chosen) > r(rejected)) and the mean margin, before training
(`eval_on_start: true`) and after.
"""

import time
from dataclasses import dataclass, field

from trl import ModelConfig, RewardConfig

from llm_recipes.config import parse, run
from llm_recipes.data import load_records, load_sources
from llm_recipes.reporting.report import loss_summary
from llm_recipes.training.common import DataArguments, finish_stage, start_stage, train_and_save
from llm_recipes.training.data_formats import for_preference
from llm_recipes.training.rewards import load_reward_model


@dataclass
class RewardScriptArguments(DataArguments):
    eval_dataset_name: str | None = field(default=None, metadata={"help": "held-out pairs for pairwise accuracy"})
    eval_dataset_split: str = "train"
    merge_adapter: bool = field(default=True, metadata={
        "result": False, "help": "LoRA: also save the merged model to <output>/merged (a plain model the RL and RSO stages load)"})


ARGUMENTS = (RewardScriptArguments, RewardConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


def heldout_metrics(trainer, eval_dataset):
    """Pairwise accuracy and margin on the held-out pairs, before (if evaluated on start) and after training."""
    logs = [e for e in trainer.state.log_history if "accuracy" in e]
    train = {"train_accuracy_last": logs[-1]["accuracy"] if logs else None}  # the last logging window's batches
    if eval_dataset is None:
        return train
    before = next((e for e in trainer.state.log_history if "eval_accuracy" in e and e.get("step") == 0), {})
    after = trainer.evaluate(eval_dataset)
    return {"eval_pairs": len(eval_dataset), "heldout_accuracy_before": before.get("eval_accuracy"),
            "heldout_accuracy": after["eval_accuracy"], "heldout_margin_before": before.get("eval_margin"),
            "heldout_margin": after["eval_margin"], "heldout_loss": after["eval_loss"], **train}


def main(args: RewardScriptArguments, training_args: RewardConfig, model_args: ModelConfig):
    from trl import RewardTrainer

    start = time.time()
    if model_args.use_peft and model_args.lora_task_type == "CAUSAL_LM":
        model_args.lora_task_type = "SEQ_CLS"  # PEFT then trains the fresh score head in full (modules_to_save)
    if not start_stage(args, training_args, model_args):  # a dry run: the plan is printed
        return None
    model, tokenizer = load_reward_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                         training_args)
    convert = lambda ds, src: for_preference(ds, src, args.on_bad_record)  # noqa: E731
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture, convert,
                                         training_args.seed, args.subset_seed)
    eval_dataset = convert(load_records(args.eval_dataset_name, args.eval_dataset_split), args.eval_dataset_name)[0] \
        if args.eval_dataset_name else None
    if eval_dataset is None:
        training_args.eval_on_start = False

    trainer, result, checkpoint = train_and_save(RewardTrainer, (args, training_args, model_args), model=model,
                                                 train_dataset=dataset, eval_dataset=eval_dataset,
                                                 processing_class=tokenizer)
    if not trainer.is_world_process_zero():
        return None
    metrics = {"pairs": len(dataset), "sources": sources, "bad_records_dropped": bad, "steps": result.global_step,
               "resumed_from": checkpoint, "lora": model_args.use_peft, "train_loss": result.training_loss,
               **loss_summary(trainer.state.log_history), **heldout_metrics(trainer, eval_dataset)}
    return finish_stage("reward", trainer, metrics, args, training_args, model_args, start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
