"""KTO stage: preference-tune with TRL's KTOTrainer on unpaired feedback (`prompt`/`completion`/`label`); paired
preference data (plain or HH transcripts) is unpaired by TRL's `unpair_preference_dataset` into a desirable and an
undesirable example per pair. With `eval_dataset_name` (held-out pairs) the report gives the reward accuracy and margin
as scripts/dpo.py does: TRL's DPOTrainer evaluates the trained policy against the same reference with the same beta
(both losses use the implicit reward beta * log(pi / pi_ref)), so a KTO run is a comparison row beside DPO runs.

    python scripts/kto.py --config recipes/dpo-data-efficiency/kto.yaml
"""

import os
import time
from dataclasses import dataclass, field

from trl import KTOConfig, ModelConfig

from llm_recipes.config import check_choices, parse, run
from llm_recipes.data import load_records, load_sources
from llm_recipes.reporting.model_card import write_model_card
from llm_recipes.reporting.report import loss_summary, markdown_table, write_report
from llm_recipes.training.common import hub_push_target, load_model, push_to_hub, run_identity, train_and_save
from llm_recipes.training.formats import for_kto, for_preference


@dataclass
class KTOScriptArguments:
    dataset_name: str | None = field(default=None, metadata={"help": "local JSONL/Parquet or a hub dataset id"})
    dataset_split: str = "train"
    dataset_mixture: list[dict] | None = field(default=None, metadata={"help": "[{path, weight, split}]"})
    subset_seed: int | None = field(default=None, metadata={
        "help": "shuffled order a fractional weight takes a prefix of (default: seed): nested subsets"})
    eval_dataset_name: str | None = field(default=None, metadata={"help": "held-out pairs for reward accuracy"})
    on_bad_record: str = field(default="error", metadata={"help": "error | drop (counted, with an example)"})
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})


ARGUMENTS = (KTOScriptArguments, KTOConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


def held_out_rewards(trainer, eval_pairs, training_args, tokenizer):
    """Reward accuracy / margin of the trained policy on held-out pairs, computed by TRL's DPOTrainer (evaluation
    only) with the KTO run's reference model and beta."""
    from trl import DPOConfig, DPOTrainer

    config = DPOConfig(output_dir=os.path.join(training_args.output_dir, "held_out_eval"), beta=training_args.beta,
                       max_length=training_args.max_length, report_to=[], seed=training_args.seed,
                       per_device_eval_batch_size=training_args.per_device_eval_batch_size,
                       use_cpu=training_args.use_cpu, bf16=training_args.bf16, activation_checkpointing=False)
    evaluator = DPOTrainer(model=trainer.model, ref_model=trainer.ref_model, args=config, train_dataset=eval_pairs,
                           eval_dataset=eval_pairs, processing_class=tokenizer)  # DPOTrainer needs a train set: unused
    m = evaluator.evaluate()
    return {"eval_pairs": len(eval_pairs), "reward_accuracy": m.get("eval_rewards/accuracies"),
            "reward_margin": m.get("eval_rewards/margins")}


def main(args: KTOScriptArguments, training_args: KTOConfig, model_args: ModelConfig):
    from transformers import set_seed
    from trl import KTOTrainer, get_peft_config

    start = time.time()
    set_seed(training_args.seed)
    hub_push_target(training_args)  # no token: stop now, not after training
    check_choices(args, on_bad_record=("error", "drop"))
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                         lambda ds, src: for_kto(ds, src, args.on_bad_record), training_args.seed,
                                         args.subset_seed)
    eval_pairs = for_preference(load_records(args.eval_dataset_name), args.eval_dataset_name, args.on_bad_record)[0] \
        if args.eval_dataset_name else None
    trainer, result, checkpoint = train_and_save(
        KTOTrainer, training_args.output_dir,
        run_identity(args, training_args, model_args),
        model=model, args=training_args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=get_peft_config(model_args))
    if not trainer.is_world_process_zero():
        return None
    logs = [e for e in trainer.state.log_history if "rewards/margins" in e or "rewards/chosen_sum" in e]
    metrics = {"examples": len(dataset), "sources": sources, "bad_records_dropped": bad, "steps": result.global_step,
               "resumed_from": checkpoint, "beta": training_args.beta, **loss_summary(trainer.state.log_history),
               "train_reward_margin": logs[-1].get("rewards/margins") if logs else None}
    if eval_pairs is not None:
        metrics.update(held_out_rewards(trainer, eval_pairs, training_args, tokenizer))
    print(markdown_table(["metric", "value"], list(metrics.items())))
    write_model_card(training_args.output_dir, "kto", metrics, (args, training_args, model_args),
                     model_args.model_name_or_path, [args.dataset_name, *(m["path"] for m in args.dataset_mixture or [])])
    report = write_report(training_args.output_dir, "kto", metrics, wall_time_s=time.time() - start)
    push_to_hub(trainer)
    return report


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
