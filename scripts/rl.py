"""RL stage (InstructGPT step 3): optimise the SFT policy against a trained reward model with TRL's RLOOTrainer (REINFORCE
leave-one-out; the installed TRL has no PPOTrainer), the reward penalised by beta x KL to the SFT model (the reference).

    accelerate launch --config_file configs/cpu.yaml scripts/rl.py --config recipes/instructgpt/rl.yaml
    python scripts/rl.py --config recipes/instructgpt-hh/rl.yaml --dry_run true

Why RLOO: like PPO in InstructGPT it is on-policy RL from a learned reward with a KL penalty to the SFT model folded
into the sequence reward (r - beta * KL, the first-order log ratio summed over the completion), but its baseline is
the mean reward of the other k-1 samples of the same prompt instead of a learned value head (no critic to train or
hold in memory); Ahmadian et al. 2024 (arXiv 2402.14740) report it matching or beating PPO for RLHF. GRPOTrainer would
also work; it adds the KL to the per-token loss and normalises advantages by the group's std.

Data: prompts from any data the SFT / DPO stages read (messages, prompt/completion, preference pairs, HH transcripts)
or a bare `prompt` column; each prompt once. `reward_model_name_or_path`: the directory scripts/reward.py saved. The
reference model is the starting model (`model_name_or_path`; with LoRA the adapter-disabled model). The report gives
the reward-model score and the KL to the SFT model on held-out prompts (`eval_dataset_name`, sampled as in training)
before training (`eval_on_start`; KL 0 by construction) and after (and the share of sampled replies cut by
max_completion_length, unfinished), the KL logged at step 0 (must be 0: the policy is
the SFT model), first and last logged train reward / KL, and, with `generation_eval_dataset`, the greedy answers'
stop-at-EOS and accuracy before and after. A plot of reward and KL over steps goes to rl_curves.png.
"""

import os
import time
from dataclasses import dataclass, field

from trl import ModelConfig, RLOOConfig

from llm_recipes.config import parse, run
from llm_recipes.data import load_records, load_sources
from llm_recipes.errors import RecipeError
from llm_recipes.generation import generation_check
from llm_recipes.reporting.report import read_report
from llm_recipes.training.common import DataArguments, finish_stage, load_model, start_stage, train_and_save
from llm_recipes.training.rewards import load_trained_reward_model, to_prompts


@dataclass
class RLScriptArguments(DataArguments):
    reward_model_name_or_path: str | None = field(default=None, metadata={
        "help": "reward model directory (scripts/reward.py's output_dir, or <output_dir>/merged after LoRA)"})
    eval_dataset_name: str | None = field(default=None, metadata={
        "help": "held-out prompts: reward and KL to the SFT model before and after training"})
    eval_dataset_split: str = "train"
    generation_eval_dataset: str | None = field(default=None, metadata={
        "result": False, "help": "held-out prompts, as in sft.py"})
    max_new_tokens: int = 16
    merge_adapter: bool = field(default=False, metadata={
        "result": False, "help": "LoRA: also save the merged model to <output>/merged"})


ARGUMENTS = (RLScriptArguments, RLOOConfig, ModelConfig)  # the dataclasses a recipe file for this stage fills


def curves(log_history):
    """(step, reward, kl) of every training log entry."""
    return [(e["step"], e.get("reward"), e.get("kl")) for e in log_history if "reward" in e and "eval_reward" not in e]


def plot(path, points):
    from llm_recipes.reporting.plots import subplots

    fig, axes = subplots(1, 2, figsize=(8, 3.2))
    for ax, i, name in ((axes[0], 1, "reward (reward model)"), (axes[1], 2, "KL to SFT (per token)")):
        ax.plot([p[0] for p in points], [p[i] for p in points], marker=".")
        ax.set_xlabel("step")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def rl_metrics(trainer, eval_dataset, reward_dir):
    """Reward / KL on held-out prompts before (eval_on_start) and after; the KL logged at step 0; first and last
    logged train values; the reward model's own held-out pairwise accuracy (its report)."""
    logs = trainer.state.log_history
    train = curves(logs)
    metrics = {"kl_step0": train[0][2] if train else None, "reward_first": train[0][1] if train else None,
               "reward_last": train[-1][1] if train else None, "kl_last": train[-1][2] if train else None}
    if eval_dataset is not None:
        before = next((e for e in logs if "eval_reward" in e and e.get("step") == 0), {})
        after = trainer.evaluate(eval_dataset)
        metrics.update(eval_prompts=len(eval_dataset), heldout_reward_before=before.get("eval_reward"),
                       heldout_reward_after=after.get("eval_reward"), heldout_kl_before=before.get("eval_kl"),
                       heldout_kl_after=after.get("eval_kl"),
                       heldout_unfinished_before=before.get("eval_completions/clipped_ratio"),
                       heldout_unfinished_after=after.get("eval_completions/clipped_ratio"))
    reward_report = read_report(reward_dir) or read_report(os.path.dirname(os.path.normpath(reward_dir))) or {}
    metrics["reward_model_heldout_accuracy"] = reward_report.get("heldout_accuracy")
    return metrics


def main(args: RLScriptArguments, training_args: RLOOConfig, model_args: ModelConfig):
    from trl import RLOOTrainer

    start = time.time()
    if not args.reward_model_name_or_path:
        raise RecipeError("reward_model_name_or_path: set it (the directory scripts/reward.py saved)")
    if not start_stage(args, training_args, model_args):  # a dry run: the plan is printed
        return None
    reward_model, reward_tokenizer = load_trained_reward_model(args.reward_model_name_or_path)
    model, tokenizer = load_model(model_args, args.allow_pickle_weights, training_args.trust_remote_code,
                                  training_args)
    dataset, _, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                       lambda ds, src: (to_prompts(ds, src), 0), training_args.seed, args.subset_seed)
    eval_dataset = to_prompts(load_records(args.eval_dataset_name, args.eval_dataset_split), args.eval_dataset_name) \
        if args.eval_dataset_name else None
    training_args.eval_on_start = eval_dataset is not None  # held-out reward and KL (0) of the SFT policy
    generation = load_records(args.generation_eval_dataset, required_keys=["messages"]) \
        if args.generation_eval_dataset else None
    before = generation_check(model, tokenizer, generation, args.max_new_tokens, training_args.bf16) \
        if generation else {}

    trainer, result, checkpoint = train_and_save(RLOOTrainer, (args, training_args, model_args), model=model,
                                                 reward_funcs=reward_model, reward_processing_classes=reward_tokenizer,
                                                 train_dataset=dataset, eval_dataset=eval_dataset,
                                                 processing_class=tokenizer)
    if not trainer.is_world_process_zero():
        return None
    metrics = {"prompts": len(dataset), "sources": sources, "steps": result.global_step, "resumed_from": checkpoint,
               "trainer": "RLOOTrainer", "beta": training_args.beta, "num_generations": training_args.num_generations,
               "lora": model_args.use_peft, **rl_metrics(trainer, eval_dataset, args.reward_model_name_or_path)}
    if generation:
        after = generation_check(trainer.model, tokenizer, generation, args.max_new_tokens, training_args.bf16)
        metrics.update({f"{k}_before": before.get(k) for k in ("stops_at_eos", "generation_accuracy")})
        metrics.update({k: after.get(k) for k in ("generation_prompts", "stops_at_eos", "generation_accuracy",
                                                   "samples")})
    points = curves(trainer.state.log_history)
    if points:
        plot(os.path.join(training_args.output_dir, "rl_curves.png"), points)
    return finish_stage("rl", trainer, metrics, args, training_args, model_args, start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
