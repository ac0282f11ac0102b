"""Data-prep stage of recipes/packing-vs-padding: text that rewards reading the context, generated at run time.

    python recipes/packing-vs-padding/make_data.py --config recipes/packing-vs-padding/data.yaml

Writes to output_dir (deterministic for a seed; src/llm_recipes/copy_world.py has the generators):
- pretrain.jsonl      copy documents (1 to `max_facts` pets with names from random syllables, stated once, asked later
                      in the same text; a share `roll_call_share` are name lists read three times)
                      shuffled with `tiny_docs_repeats` copies of the ordinary tiny-world documents;
- recall_eval.jsonl   held-out prompt/completion/answer in the same form: the precondition check before SFT;
- recall_dev.jsonl    another held-out set of the same form, which pretraining watches to stop (stop_at_recall);
- sft.jsonl           prompt/completion/answer: the SFT data of the three layouts (each sample self-contained; a share
                      `unanswerable_share` state no pet and are answered わかりません。);
- probe.jsonl         context/question/answer: the fact in a previous sample, the question in the next.
Every file draws from its own random.Random(seed + i), so changing one count leaves the other files as they were.
"""

import json
import os
import random
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.copy_world import PETS, copy_document, probe_item, roll_call, sft_example, unanswerable_example
from llm_recipes.data import iter_texts
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import clear_report, markdown_table, write_report


@dataclass
class CopyDataArguments:
    output_dir: str = field(metadata={"help": "where the JSONL files, report.json and report.md go"})
    tiny_docs: str | None = field(default=None, metadata={"help": "ordinary text mixed into pretraining (JSONL text)"})
    tiny_docs_repeats: int = 4
    copy_documents: int = 20000
    max_facts: int = field(default=1, metadata={"help": "pet facts per copy document / SFT / recall prompt: 1 to "
                                                         "max_facts (the probe's previous sample states one)"})
    roll_call_share: float = field(default=0.0, metadata={"help": "share of copy documents that are name lists read "
                                                                  "three times (copy_world.roll_call)"})
    recall_eval_examples: int = 200
    recall_dev_examples: int = field(default=200, metadata={
        "help": "held-out prompts of the same kind for pretraining to watch (stop_at_recall), apart from the gate's"})
    sft_examples: int = 3200
    unanswerable_share: float = field(default=0.0, metadata={
        "help": "share of SFT samples whose passage states no pet, answered わかりません。 (copy_world.unanswerable_example)"})
    probe_items: int = 120
    seed: int = 0


ARGUMENTS = (CopyDataArguments,)


def build(args):
    """{file name: records}; a function of the arguments only."""
    rngs = [random.Random(args.seed + i) for i in range(6)]
    pretrain = [roll_call(rngs[0]) if rngs[0].random() < args.roll_call_share else
                copy_document(rngs[0], args.max_facts) for _ in range(args.copy_documents)]
    if args.tiny_docs:
        pretrain += [{"text": t} for _ in range(args.tiny_docs_repeats) for t in iter_texts(args.tiny_docs)]
    rngs[1].shuffle(pretrain)
    return {"pretrain.jsonl": pretrain,
            "recall_eval.jsonl": [sft_example(rngs[2], args.max_facts) for _ in range(args.recall_eval_examples)],
            "sft.jsonl": [unanswerable_example(rngs[3]) if args.unanswerable_share and
                          rngs[3].random() < args.unanswerable_share else sft_example(rngs[3], args.max_facts)
                          for _ in range(args.sft_examples)],
            "probe.jsonl": [probe_item(rngs[4]) for _ in range(args.probe_items)],
            "recall_dev.jsonl": [sft_example(rngs[5], args.max_facts) for _ in range(args.recall_dev_examples)]}


def write(files, output_dir):
    os.makedirs(output_dir, exist_ok=True)
    for name, rows in files.items():
        with open(os.path.join(output_dir, name), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(args: CopyDataArguments):
    start = time.time()
    if not 0.0 <= args.unanswerable_share <= 1.0:
        raise RecipeError(f"unanswerable_share: {args.unanswerable_share} must be between 0 and 1")
    if args.max_facts < 1 or args.max_facts > len(PETS):
        raise RecipeError(f"max_facts: {args.max_facts} must be between 1 and {len(PETS)} (one pet kind per fact)")
    clear_report(args.output_dir)
    files = build(args)
    write(files, args.output_dir)
    counts = {name: len(rows) for name, rows in files.items()}
    example = files["probe.jsonl"][0]
    text = (f"# Copy data (seed {args.seed})\n\n{markdown_table(['file', 'records'], list(counts.items()))}\n\n"
            f"Probe item: previous sample\n\n    {example['context']!r}\n\nnext sample {example['question']!r} -> "
            f"{example['answer']!r}\n")
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return write_report(args.output_dir, "copy_data", {"records": counts, "seed": args.seed},
                        wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
