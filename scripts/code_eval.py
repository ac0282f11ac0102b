"""Code evaluation: pass@k on HumanEval-format local files (task_id, prompt, test, entry_point), with generated code
run in a sandbox (separate process, time and memory limits, no network, writes confined to a temporary directory).

    python scripts/code_eval.py --config recipes/code-eval/code_eval.yaml
"""

import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.data import iter_jsonl
from llm_recipes.evaluation.code_eval import humaneval_program, pass_at_k, run_sandboxed
from llm_recipes.generation import generate, load
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.training.common import require_model_dir

STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


@dataclass
class CodeEvalArguments:
    model_name_or_path: str = field(metadata={"help": "local model directory"})
    problems_path: str = field(metadata={"help": "HumanEval-format JSONL"})
    output_dir: str = field(metadata={"help": "where samples and report.json go"})
    n_samples: int = 10
    k: list[int] = field(default_factory=lambda: [1, 5, 10])
    temperature: float = 0.8
    max_new_tokens: int = 256
    timeout_s: float = 5.0
    memory_mb: int = 512
    seed: int = 1234


ARGUMENTS = (CodeEvalArguments,)  # the dataclasses a recipe file for this stage fills


def sample_completions(model, tokenizer, prompt, args):
    """n sampled completions of a HumanEval prompt, each cut at the first stop sequence."""
    texts = [g.text for g in generate(model, tokenizer, [prompt], args.max_new_tokens, do_sample=True,
                                      temperature=args.temperature, num_return_sequences=args.n_samples, chat=False,
                                      strip=False)[0]]
    return [text[:min([text.find(s) for s in STOP if s in text] or [len(text)])] for text in texts]


def main(args: CodeEvalArguments):
    from transformers import set_seed

    start = time.time()
    set_seed(args.seed)
    model, tokenizer = load(require_model_dir(args.model_name_or_path))
    problems = [p for _, p in iter_jsonl(args.problems_path, required_keys=["task_id", "prompt", "test",
                                                                            "entry_point"])]
    clear_report(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    per_problem = []
    with open(os.path.join(args.output_dir, "samples.jsonl"), "w", encoding="utf-8") as f:
        for problem in problems:
            results = []
            for completion in sample_completions(model, tokenizer, problem["prompt"], args):
                status, output = run_sandboxed(humaneval_program(problem, completion), args.timeout_s, args.memory_mb)
                results.append(status == "passed")
                f.write(json.dumps({"task_id": problem["task_id"], "completion": completion, "status": status,
                                    "output": output[-500:]}, ensure_ascii=False) + "\n")
            per_problem.append((len(results), sum(results)))
    scores = {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in per_problem) / len(per_problem)
              for k in args.k if k <= args.n_samples}
    print(markdown_table(["problems", "samples each", *scores], [[len(problems), args.n_samples, *scores.values()]]))
    return write_report(args.output_dir, "code_eval", {"problems": len(problems), "n_samples": args.n_samples,
                                                       **scores}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
