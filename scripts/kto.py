"""KTO stage: preference-tune with TRL's KTOTrainer on unpaired feedback (`prompt`/`completion`/`label`); paired
preference data (plain or HH transcripts) is unrolled into a desirable and an undesirable example per pair.

    python scripts/kto.py --config recipes/dpo-data-efficiency/kto.yaml
"""

import time
from dataclasses import dataclass

from trl import KTOConfig, ModelConfig

from llm_recipes.config import parse, run
from llm_recipes.data import load_sources
from llm_recipes.reporting.report import loss_summary
from llm_recipes.training.common import DataArguments, finish_stage, load_model, start_stage, train_and_save
from llm_recipes.training.formats import for_kto


@dataclass
class KTOScriptArguments(DataArguments):
    """KTO needs only the shared data options: unpaired prompt / completion / label records, or preference pairs."""


ARGUMENTS = (KTOScriptArguments, KTOConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


def main(args: KTOScriptArguments, training_args: KTOConfig, model_args: ModelConfig):
    from trl import KTOTrainer

    start = time.time()
    if not start_stage(args, training_args, model_args):  # a dry run: the plan is printed
        return None
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                         lambda ds, src: for_kto(ds, src, args.on_bad_record), training_args.seed)
    trainer, result, checkpoint = train_and_save(KTOTrainer, (args, training_args, model_args), model=model,
                                                 train_dataset=dataset, processing_class=tokenizer)
    if not trainer.is_world_process_zero():
        return None
    logs = [e for e in trainer.state.log_history if "rewards/margins" in e or "rewards/chosen_sum" in e]
    metrics = {"examples": len(dataset), "sources": sources, "bad_records_dropped": bad, "steps": result.global_step,
               "resumed_from": checkpoint, "beta": training_args.beta, **loss_summary(trainer.state.log_history),
               "reward_margin": logs[-1].get("rewards/margins") if logs else None}
    return finish_stage("kto", trainer, metrics, args, training_args, model_args, start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
