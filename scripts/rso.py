"""RSO pairs (Liu et al. 2024, "Statistical Rejection Sampling Improves Preference Optimization", arXiv 2309.06657):
sample `num_candidates` responses per prompt from the SFT policy, score them with a reward model, keep `num_samples`
of them by statistical rejection sampling from the estimated optimal policy pi*(y|x) ∝ pi_sft(y|x) exp(r(x, y) / beta)
(Algorithm 1: accept with probability exp((r - r_max) / beta)), and pair the accepted responses (higher reward =
chosen). The pairs are written as prompt/chosen/rejected JSONL that scripts/dpo.py trains on (loss_type sigmoid, or
hinge for RSO's SLiC-style loss).

    python scripts/rso.py --config recipes/rso/rso.yaml
    python scripts/rso.py --config recipes/rso-hh/rso.yaml --dry_run true

Prompts come from any data the SFT / DPO stages read (each prompt once). Duplicate responses to a prompt count once
(the paper's candidates are a dict). `rejection_sampling: false` pairs the first `num_samples` distinct samples
instead: pairs from pi_sft itself, ranked by the reward model (the paper's "sft-sample-rank" baseline). Writes output_dir/pairs.jsonl (each pair with its two rewards), report.json /
report.md: candidates, distinct candidates, accepted, pairs, and the mean reward of all candidates vs accepted ones
(rejection sampling tilts towards high reward, the more so the smaller beta).
"""

import json
import os
import random
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.data import load_sources
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.training.rewards import load_trained_reward_model, pair_up, rejection_sample, score, to_prompts


@dataclass
class RSOArguments:
    model_name_or_path: str = field(metadata={"help": "the SFT policy (local directory or cached hub model)"})
    reward_model_name_or_path: str = field(metadata={"help": "reward model directory (scripts/reward.py)"})
    output_dir: str
    dataset_name: str | None = field(default=None, metadata={"help": "prompts: any SFT / preference data, or `prompt`"})
    dataset_split: str = "train"
    dataset_mixture: list[dict] | None = None
    num_candidates: int = field(default=16, metadata={"help": "responses sampled per prompt (the paper: 64)"})
    num_samples: int = field(default=2, metadata={"help": "responses accepted per prompt (2 -> one pair; paper: 8)"})
    beta: float = field(default=0.5, metadata={"help": "pi* ∝ pi_sft exp(r / beta): smaller beta, greedier sampling"})
    rejection_sampling: bool = field(default=True, metadata={
        "help": "false: keep the first num_samples distinct samples (pairs from pi_sft itself, the paper's "
                "'sft-sample-rank' baseline)"})
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 16
    batch_size: int = 16
    seed: int = 42
    dry_run: bool = field(default=False, metadata={"help": "print the plan; load no model"})


ARGUMENTS = (RSOArguments,)


def reply(prompt, text):
    return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text


def mean(values):
    return sum(values) / len(values) if values else None


def main(args: RSOArguments):
    from transformers import set_seed

    from llm_recipes.generation import generate, load
    from llm_recipes.training.common import require_model_dir

    start = time.time()
    if args.dry_run:
        print(markdown_table(["key", "value"], [
            ["policy", args.model_name_or_path], ["reward model", args.reward_model_name_or_path],
            ["prompts", args.dataset_name or args.dataset_mixture],
            ["sampling", f"{args.num_candidates} per prompt, T={args.temperature}, top_p={args.top_p}, "
                         f"{args.max_new_tokens} new tokens"],
            ["rejection sampling", f"{args.num_samples} accepted per prompt, beta={args.beta}" if
             args.rejection_sampling else f"off: the first {args.num_samples} distinct samples"],
            ["writes", f"{args.output_dir}/pairs.jsonl"]]))
        return None
    args.model_name_or_path = require_model_dir(args.model_name_or_path, "model_name_or_path")
    set_seed(args.seed)
    rng = random.Random(args.seed)
    prompts, _, sources = load_sources(args.dataset_name, args.dataset_split, args.dataset_mixture,
                                       lambda ds, src: (to_prompts(ds, src), 0), args.seed)
    prompts = prompts["prompt"]
    reward_model, reward_tokenizer = load_trained_reward_model(args.reward_model_name_or_path)
    policy, tokenizer = load(args.model_name_or_path)
    generations = generate(policy, tokenizer, prompts, args.max_new_tokens, do_sample=True,
                           temperature=args.temperature, top_p=args.top_p, num_return_sequences=args.num_candidates,
                           batch_size=max(1, args.batch_size // args.num_candidates))
    clear_report(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    counts = {"candidates": 0, "distinct": 0, "accepted": 0, "pairs": 0, "prompts_without_pair": 0}
    all_rewards, accepted_rewards, chosen_rewards, rejected_rewards, samples = [], [], [], [], []
    with open(os.path.join(args.output_dir, "pairs.jsonl"), "w", encoding="utf-8") as f:
        for prompt, group in zip(prompts, generations, strict=True):
            texts = list(dict.fromkeys(g.text for g in group if g.text))  # distinct, in sampling order
            rewards = score(reward_model, reward_tokenizer, [prompt] * len(texts), texts) if texts else []
            accepted = rejection_sample(rewards, args.num_samples, args.beta, rng) if args.rejection_sampling \
                else list(range(min(args.num_samples, len(texts))))
            pairs = pair_up(accepted, rewards)
            counts["candidates"] += len(group)
            counts["distinct"] += len(texts)
            counts["accepted"] += len(accepted)
            counts["pairs"] += len(pairs)
            counts["prompts_without_pair"] += not pairs
            all_rewards += rewards
            accepted_rewards += [rewards[i] for i in accepted]
            for c, r in pairs:
                chosen_rewards.append(rewards[c])
                rejected_rewards.append(rewards[r])
                record = {"prompt": prompt, "chosen": reply(prompt, texts[c]), "rejected": reply(prompt, texts[r]),
                          "chosen_reward": rewards[c], "rejected_reward": rewards[r]}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                if len(samples) < 3:
                    samples.append({"prompt": prompt[-1]["content"] if isinstance(prompt, list) else prompt,
                                    "chosen": texts[c], "rejected": texts[r]})
    metrics = {"prompts": len(prompts), "sources": sources, **counts, "beta": args.beta,
               "rejection_sampling": args.rejection_sampling,
               "num_candidates": args.num_candidates, "num_samples": args.num_samples,
               "mean_reward_candidates": mean(all_rewards), "mean_reward_accepted": mean(accepted_rewards),
               "mean_reward_chosen": mean(chosen_rewards), "mean_reward_rejected": mean(rejected_rewards),
               "pairs_file": os.path.join(args.output_dir, "pairs.jsonl"), "samples": samples}
    print(markdown_table(["metric", "value"], [(k, v) for k, v in metrics.items() if not isinstance(v, list)]))
    return write_report(args.output_dir, "rso", metrics, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
