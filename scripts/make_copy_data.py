"""Data-prep stage of recipes/packing-vs-padding: text that rewards reading the context, generated at run time.

    python scripts/make_copy_data.py --config recipes/packing-vs-padding/data.yaml

Writes to output_dir (deterministic for a seed; src/llm_recipes/copy_world.py has the generators):
- pretrain.jsonl      copy documents (pet names from random syllables, stated once, asked later in the same text;
                      a share `roll_call_share` are name lists read twice)
                      shuffled with `tiny_docs_repeats` copies of the ordinary tiny-world documents;
- recall_eval.jsonl   held-out prompt/completion/answer in the same form: the precondition check before SFT;
- sft.jsonl           prompt/completion/answer: the SFT data of the three layouts (each sample self-contained);
- probe.jsonl         context/question/answer: the fact in a previous sample, the question in the next.
Every file draws from its own random.Random(seed + i), so changing one count leaves the other files as they were.
"""

import json
import os
import random
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run
from llm_recipes.copy_world import copy_document, probe_item, roll_call, sft_example
from llm_recipes.data import iter_texts
from llm_recipes.reporting.report import clear_report, markdown_table, write_report


@dataclass
class CopyDataArguments:
    output_dir: str = field(metadata={"help": "where the JSONL files, report.json and report.md go"})
    tiny_docs: str | None = field(default=None, metadata={"help": "ordinary text mixed into pretraining (JSONL text)"})
    tiny_docs_repeats: int = 4
    copy_documents: int = 20000
    roll_call_share: float = field(default=0.3, metadata={"help": "share of copy documents that are name lists read "
                                                                  "twice (copy_world.roll_call)"})
    recall_eval_examples: int = 200
    sft_examples: int = 3200
    probe_items: int = 120
    seed: int = 0


ARGUMENTS = (CopyDataArguments,)


def build(args):
    """{file name: records}; a function of the arguments only."""
    rngs = [random.Random(args.seed + i) for i in range(5)]
    pretrain = [roll_call(rngs[0]) if rngs[0].random() < args.roll_call_share else copy_document(rngs[0])
                for _ in range(args.copy_documents)]
    if args.tiny_docs:
        pretrain += [{"text": t} for _ in range(args.tiny_docs_repeats) for t in iter_texts(args.tiny_docs)]
    rngs[1].shuffle(pretrain)
    return {"pretrain.jsonl": pretrain,
            "recall_eval.jsonl": [sft_example(rngs[2]) for _ in range(args.recall_eval_examples)],
            "sft.jsonl": [sft_example(rngs[3]) for _ in range(args.sft_examples)],
            "probe.jsonl": [probe_item(rngs[4]) for _ in range(args.probe_items)]}


def write(files, output_dir):
    os.makedirs(output_dir, exist_ok=True)
    for name, rows in files.items():
        with open(os.path.join(output_dir, name), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(args: CopyDataArguments):
    start = time.time()
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
