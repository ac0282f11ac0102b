"""LLM-as-a-judge: MT-bench-style pairwise comparison of two models (each pair judged twice with the answers' positions
swapped; a verdict that flips is a tie) or single-answer grading on a 1-10 scale.

    python scripts/judge.py --config recipes/judge/judge.yaml

Questions: a local JSONL in FastChat's question format ({"question_id", "category", "turns": [...]}), which the
Japanese MT-bench files also use. Answers: generated from local model directories (`model_a`, `model_b`) or read from
FastChat answer files. The judge is a local Hugging Face model (`judge_model_name_or_path`) or, only when a recipe names
it, an OpenAI-compatible endpoint (`judge_api_base`, `judge_api_model`, key from the environment variable
`judge_api_key_env`; the key is never written anywhere).
"""

import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import check_choices, parse, run
from llm_recipes.data import iter_jsonl
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation.judging import generate_answers, make_judge, pairwise, single
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.training.common import require_model_dir


@dataclass
class JudgeArguments:
    questions_path: str = field(metadata={"help": "FastChat-format question JSONL"})
    output_dir: str = field(metadata={"help": "where answers, judgments and report.json go"})
    mode: str = field(default="pairwise", metadata={"help": "pairwise | single"})
    model_a: str | None = field(default=None, metadata={"help": "model directory (answers are generated)"})
    model_b: str | None = None
    answers_a: str | None = field(default=None, metadata={"help": "FastChat answer JSONL instead of model_a"})
    answers_b: str | None = None
    judge_model_name_or_path: str | None = field(default=None, metadata={"help": "local judge model directory"})
    judge_api_base: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint (opt-in)"})
    judge_api_model: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    max_new_tokens: int = 256
    judge_max_new_tokens: int = 512


ARGUMENTS = (JudgeArguments,)  # the dataclasses a recipe file for this stage fills


def load_answers(path, model, questions, max_new_tokens, key):
    if path:
        return {r["question_id"]: r["choices"][0]["turns"][0] for _, r in iter_jsonl(path, ["question_id", "choices"])}
    if not model:
        raise RecipeError(f"{key}: give a model directory or an answers file")
    return generate_answers(require_model_dir(model, key), questions, max_new_tokens)


def main(args: JudgeArguments, judge=None):
    start = time.time()
    check_choices(args, mode=("pairwise", "single"))
    questions = [q for _, q in iter_jsonl(args.questions_path, required_keys=["question_id", "turns"])]
    clear_report(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    judge = judge or make_judge(args.judge_model_name_or_path, args.judge_api_base, args.judge_api_model,
                                 args.judge_api_key_env, args.judge_max_new_tokens)
    answers_a = load_answers(args.answers_a, args.model_a, questions, args.max_new_tokens, "model_a")
    if args.mode == "pairwise":
        answers_b = load_answers(args.answers_b, args.model_b, questions, args.max_new_tokens, "model_b")
        records, summary = pairwise(questions, answers_a, answers_b, judge)
        rows = [[args.model_a or args.answers_a, args.model_b or args.answers_b, summary["win"], summary["loss"],
                 summary["tie"], summary["inconsistent"], round(summary["adjusted_win_rate"], 3)]]
        table = markdown_table(["model A", "model B", "win", "loss", "tie", "flipped with order",
                                "adjusted win rate (win + tie/2)"], rows)
    else:
        records, summary = single(questions, answers_a, judge)
        table = markdown_table(["model", "mean rating (1-10)", "rated"], [[args.model_a or args.answers_a,
                                                                         summary["mean_rating"], summary["rated"]]])
    with open(os.path.join(args.output_dir, "judgments.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    print(table)
    return write_report(args.output_dir, "judge", {"mode": args.mode, **summary}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
