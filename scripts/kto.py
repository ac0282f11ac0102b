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

from llm_recipes.config import parse, run
from llm_recipes.data import load_records, load_sources
from llm_recipes.reporting.report import loss_summary
from llm_recipes.training.common import DataArguments, finish_stage, load_model, start_stage, train_and_save
from llm_recipes.training.data_formats import for_kto, for_preference


@dataclass
class KTOScriptArguments(DataArguments):
    """The shared data options (unpaired prompt / completion / label records, or preference pairs), and held-out
    pairs on which the trained policy's reward accuracy is measured."""

    eval_dataset_name: str | None = field(default=None, metadata={"help": "held-out pairs for reward accuracy"})


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
    from trl import KTOTrainer

    start = time.time()
    if not start_stage(args, training_args, model_args):  # a dry run: the plan is printed
        return None
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                         lambda ds, src: for_kto(ds, src, args.on_bad_record), training_args.seed,
                                         args.subset_seed)
    eval_pairs = for_preference(load_records(args.eval_dataset_name), args.eval_dataset_name, args.on_bad_record)[0] \
        if args.eval_dataset_name else None
    trainer, result, checkpoint = train_and_save(KTOTrainer, (args, training_args, model_args), model=model,
                                                 train_dataset=dataset, processing_class=tokenizer)
    if not trainer.is_world_process_zero():
        return None
    logs = [e for e in trainer.state.log_history if "rewards/margins" in e or "rewards/chosen_sum" in e]
    metrics = {"examples": len(dataset), "sources": sources, "bad_records_dropped": bad, "steps": result.global_step,
               "resumed_from": checkpoint, "beta": training_args.beta, **loss_summary(trainer.state.log_history),
               "train_reward_margin": logs[-1].get("rewards/margins") if logs else None}
    if eval_pairs is not None:
        metrics.update(held_out_rewards(trainer, eval_pairs, training_args, tokenizer))
    return finish_stage("kto", trainer, metrics, args, training_args, model_args, start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
