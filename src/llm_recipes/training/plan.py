"""`--dry_run true` for scripts/pretrain.py: the model's shapes and parameter counts on the meta device and the data-stage
plan (steps and tokens per stage, Rho-1 / UL2 settings), printed offline."""

import math
import os

from llm_recipes.reporting.report import markdown_table
from llm_recipes.training.modeling import build_config, count_parameters, meta_model
from llm_recipes.training.ul2 import plan_lines


def print_plan(args, training_args, tokenizer):
    """Shapes and parameter counts on the meta device, and the data-stage plan; nothing is downloaded or allocated."""
    from transformers import AutoConfig

    if args.model_name_or_path:
        config = AutoConfig.from_pretrained(args.model_name_or_path) if os.path.isdir(args.model_name_or_path) else None
        shape = [["continues from", args.model_name_or_path + ("" if config else " (hub: not read in a dry run)")]]
    else:
        config = build_config(args, tokenizer)
        shape = [["architecture", args.architecture], ["layers", args.num_hidden_layers], ["hidden", args.hidden_size]]
    counts = count_parameters(meta_model(config)) if config else {}
    print(markdown_table(["key", "value"], [*shape, *counts.items()]))
    per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    plan = []
    for i, stage in enumerate(args.data_stages or [{"dataset_name": args.dataset_name}]):
        block = stage.get("block_size", args.block_size)
        steps = math.ceil(stage["max_tokens"] / (per_step * block)) if "max_tokens" in stage else \
            stage.get("max_steps", training_args.max_steps)
        sources = stage.get("datasets") or [{"path": stage["dataset_name"], "config": args.dataset_config}]
        data = ", ".join(f"{s['path']}{':' + s['config'] if s.get('config') else ''} x{s.get('weight', 1.0)}"
                         for s in sources)
        plan.append([i, data, block, steps, steps * per_step * block])
    print(markdown_table(["stage", "data", "block", "steps (1 process)", "tokens"], plan))
    if args.token_selection:
        print(f"token selection (Rho-1): loss on the top {args.token_selection['ratio']:.0%} of each batch's tokens by "
              f"excess loss over {args.token_selection['reference_model']}")
    for line in plan_lines(args.ul2_denoisers, max(p[2] for p in plan)) if args.ul2_denoisers else []:
        print(line)
    return {**counts, "stage_steps": [p[3] for p in plan]}
