"""KTO stage: preference-tune with TRL's KTOTrainer on unpaired feedback (`prompt`/`completion`/`label`); paired
preference data (plain or HH transcripts) is unrolled into a desirable and an undesirable example per pair.

    python scripts/kto.py --config recipes/dpo-data-efficiency/kto.yaml
"""

import time
from dataclasses import dataclass, field

from trl import KTOConfig, ModelConfig

from llm_recipes.config import check_choices, parse, run
from llm_recipes.data import load_sources
from llm_recipes.reporting.model_card import write_model_card
from llm_recipes.reporting.report import loss_summary, markdown_table, write_report
from llm_recipes.training.common import hub_push_target, load_model, push_to_hub, run_identity, train_and_save
from llm_recipes.training.formats import for_kto


@dataclass
class KTOScriptArguments:
    dataset_name: str | None = field(default=None, metadata={"help": "local JSONL/Parquet or a hub dataset id"})
    dataset_split: str = "train"
    dataset_mixture: list[dict] | None = field(default=None, metadata={"help": "[{path, weight, split}]"})
    on_bad_record: str = field(default="error", metadata={"help": "error | drop (counted, with an example)"})
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load *.bin weights (can run code)"})


ARGUMENTS = (KTOScriptArguments, KTOConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


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
                                         lambda ds, src: for_kto(ds, src, args.on_bad_record), training_args.seed)
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
               "reward_margin": logs[-1].get("rewards/margins") if logs else None}
    print(markdown_table(["metric", "value"], list(metrics.items())))
    write_model_card(training_args.output_dir, "kto", metrics, (args, training_args, model_args),
                     model_args.model_name_or_path, [args.dataset_name, *(m["path"] for m in args.dataset_mixture or [])])
    report = write_report(training_args.output_dir, "kto", metrics, wall_time_s=time.time() - start)
    push_to_hub(trainer)
    return report


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
