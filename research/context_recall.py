"""Precondition stage: does the model read its context? Held-out in-context recall, and a stop when it is too low.

    python research/context_recall.py --config recipes/packing-vs-padding/precondition.yaml

Each held-out record is a passage that states a name once and a question about it (`prompt`), and the reply
(`completion`, the name + です。) that can only be copied from the passage. Recall = share of records whose reply greedy
decoding produces exactly (scored in one forward pass). Below `min_recall` the stage stops with a one-line error and
exit code 2, so a recipe does not go on to study a context effect in a model that never used its context.
"""

import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.data import load_records
from llm_recipes.errors import RecipeError
from llm_recipes.generation import load
from llm_recipes.reporting.report import clear_report, markdown_table, write_report
from llm_recipes.reporting.stats import proportion_interval
from llm_recipes.training.common import require_model_dir
from llm_recipes.training.recall_target import in_context_recall


@dataclass
class RecallArguments:
    model_name_or_path: str = field(metadata={"help": "the model to check (a saved model directory)"})
    dataset_name: str = field(metadata={"help": "held-out JSONL: prompt, completion (copied from the prompt)"})
    output_dir: str = field(metadata={"help": "where report.json and report.md go"})
    min_recall: float = field(default=0.8, metadata={"help": "stop (exit 2) below this held-out recall"})


ARGUMENTS = (RecallArguments,)


def main(args: RecallArguments):
    start = time.time()
    args.model_name_or_path = require_model_dir(args.model_name_or_path)
    records = list(load_records(args.dataset_name, required_keys=["prompt", "completion"]))
    clear_report(args.output_dir)
    correct, logprob = in_context_recall(*load(args.model_name_or_path), records)
    value, (low, high) = correct / len(records), proportion_interval(correct, len(records))
    print(f"held-out in-context recall: {value:.3f} ({correct}/{len(records)}, 95% Wilson [{low:.3f}, {high:.3f}]); "
          f"required >= {args.min_recall}")
    if value < args.min_recall:
        raise RecipeError(f"precondition failed: held-out in-context recall {value:.3f} ({correct}/{len(records)}) "
                          f"of {args.model_name_or_path} is below min_recall {args.min_recall}: the model does not "
                          "read its context yet (pretrain longer); stopping before SFT")
    os.makedirs(args.output_dir, exist_ok=True)
    table = markdown_table(["model", "records", "recall", "95% interval", "mean log p(reply)", "min_recall"],
                           [[args.model_name_or_path, len(records), value, f"[{low:.3f}, {high:.3f}]", logprob,
                             args.min_recall]])
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(f"# Held-out in-context recall (precondition)\n\n{table}\n")
    return write_report(args.output_dir, "context_recall", {
        "model": args.model_name_or_path, "records": len(records), "recall": value, "recall_low": low,
        "recall_high": high, "mean_logprob": logprob, "min_recall": args.min_recall}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
