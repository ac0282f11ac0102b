"""DPO stage: preference-tune with TRL's DPOTrainer; loss types sigmoid (DPO), ipo, hinge (RSO/SLiC) and the others
TRL offers; full fine-tuning or LoRA (then the reference model is the adapter-disabled base).

    accelerate launch --config_file configs/cpu.yaml scripts/dpo.py --config recipes/tiny/dpo.yaml
    python scripts/dpo.py --config recipes/tiny/dpo.yaml --loss_type ipo --use_peft true

Data: `prompt`/`chosen`/`rejected` (plain or conversational) or Anthropic HH transcripts (`chosen`/`rejected` strings),
detected by columns; `dataset_mixture` mixes sources with weights (a fraction is a prefix of one shuffled order per
source, `subset_seed`, so 20 % of the pairs lie inside 40 %). `precompute_ref_log_probs: true` computes the
reference log-probabilities once. Re-running resumes from the last checkpoint. The report gives the reward accuracy and
margin (chosen vs rejected implicit reward), on held-out pairs when `eval_dataset_name` is set.
"""

import time
from dataclasses import dataclass, field

from trl import DPOConfig, ModelConfig

from llm_recipes.config import parse, run
from llm_recipes.data import iter_jsonl, load_records, load_sources
from llm_recipes.evaluation.judging import generate_answers, make_judge, pairwise
from llm_recipes.generation import generation_check
from llm_recipes.reporting.report import loss_summary
from llm_recipes.training.common import (
    DataArguments,
    finish_stage,
    load_model,
    require_model_dir,
    start_stage,
    train_and_save,
)
from llm_recipes.training.data_formats import for_preference


@dataclass
class DPOScriptArguments(DataArguments):
    eval_dataset_name: str | None = field(default=None, metadata={"help": "held-out pairs for reward accuracy"})
    generation_eval_dataset: str | None = field(default=None, metadata={
        "result": False, "help": "held-out prompts, as in sft.py"})
    max_new_tokens: int = 16
    judge_questions: str | None = field(default=None, metadata={
        "result": False, "help": "FastChat question JSONL: after training, the pairwise judge (positions swapped) compares this model's "
                "answers with the starting model's; report win_rate_vs_start (win + tie/2)"})
    judge_model_name_or_path: str | None = field(default=None, metadata={
        "result": False, "help": "local judge model directory"})
    judge_api_base: str | None = field(default=None, metadata={
        "result": False, "help": "OpenAI-compatible endpoint (opt-in)"})
    judge_api_model: str | None = field(default=None, metadata={"result": False})
    judge_max_new_tokens: int = 64
    merge_adapter: bool = field(default=False, metadata={
        "result": False, "help": "LoRA: also save the merged model to <output>/merged"})


ARGUMENTS = (DPOScriptArguments, DPOConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


def reward_metrics(trainer, eval_dataset):
    """Reward accuracy / margin: on held-out pairs if given, else from the last training logs."""
    if eval_dataset is not None:
        m = trainer.evaluate(eval_dataset)
        return {"eval_pairs": len(eval_dataset), "reward_accuracy": m.get("eval_rewards/accuracies"),
                "reward_margin": m.get("eval_rewards/margins")}
    logs = [e for e in trainer.state.log_history if "rewards/accuracies" in e]
    return {"reward_accuracy": logs[-1]["rewards/accuracies"] if logs else None,
            "reward_margin": logs[-1]["rewards/margins"] if logs else None}


def judge_against_start(args, trained_dir, start_dir):
    """Pairwise LLM-as-a-judge: the trained model (A) against the model it started from (B)."""
    questions = [q for _, q in iter_jsonl(args.judge_questions, required_keys=["question_id", "turns"])]
    judge = make_judge(args.judge_model_name_or_path, args.judge_api_base, args.judge_api_model,
                       max_new_tokens=args.judge_max_new_tokens)
    _, summary = pairwise(questions, generate_answers(trained_dir, questions, args.max_new_tokens),
                          generate_answers(start_dir, questions, args.max_new_tokens), judge)
    return {"win_rate_vs_start": summary["adjusted_win_rate"], "judged": summary}


def main(args: DPOScriptArguments, training_args: DPOConfig, model_args: ModelConfig):
    from trl import DPOTrainer

    start = time.time()
    if not start_stage(args, training_args, model_args):  # a dry run: the plan is printed
        return None
    if args.judge_questions:  # checked before training, loaded after it
        list(iter_jsonl(args.judge_questions, required_keys=["question_id", "turns"]))
        if not args.judge_api_base:
            require_model_dir(args.judge_model_name_or_path or "", "judge_model_name_or_path")
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    convert = lambda ds, src: for_preference(ds, src, args.on_bad_record)  # noqa: E731
    dataset, bad, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture, convert,
                                         training_args.seed, args.subset_seed)
    eval_dataset = convert(load_records(args.eval_dataset_name), args.eval_dataset_name)[0] \
        if args.eval_dataset_name else None

    trainer, result, checkpoint = train_and_save(DPOTrainer, (args, training_args, model_args), model=model,
                                                 train_dataset=dataset, processing_class=tokenizer)
    if not trainer.is_world_process_zero():
        return None
    metrics = {"pairs": len(dataset), "sources": sources, "bad_records_dropped": bad, "steps": result.global_step,
               "resumed_from": checkpoint, "loss_type": training_args.loss_type, "beta": training_args.beta,
               "lora": model_args.use_peft, **loss_summary([e for e in trainer.state.log_history if "rewards/margins"
                                                           in e]), **reward_metrics(trainer, eval_dataset)}
    if args.generation_eval_dataset:
        prompts = load_records(args.generation_eval_dataset, required_keys=["messages"])
        metrics.update(generation_check(trainer.model, tokenizer, prompts, args.max_new_tokens, training_args.bf16))
    if args.judge_questions:
        metrics.update(judge_against_start(args, training_args.output_dir, model_args.model_name_or_path))
    return finish_stage("dpo", trainer, metrics, args, training_args, model_args, start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
