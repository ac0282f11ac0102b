"""Stage reports: every stage writes `report.json` last (atomically), so a report means the stage completed."""

import glob
import json
import math
import os
import time

from llm_recipes.errors import RecipeError


def write_json_atomic(path, data):
    """Write JSON so that a reader never sees half a file (temporary file, then rename)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2, default=str)
    os.replace(tmp, path)


def write_report(output_dir, stage, metrics, wall_time_s=None):
    report = {"stage": stage, "completed_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **metrics}
    if wall_time_s is not None:
        report["wall_time_s"] = round(wall_time_s, 1)
    write_json_atomic(os.path.join(output_dir, "report.json"), report)
    return report


def read_report(output_dir):
    path = os.path.join(output_dir, "report.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def clear_report(output_dir):
    """Called when a stage starts, so an interrupted re-run never looks complete."""
    path = os.path.join(output_dir, "report.json")
    if os.path.exists(path):
        os.remove(path)


def check_output_dir(output_dir, identity):
    """Refuse to resume into or overwrite an output_dir that holds a different run (other model, data or shape).
    `identity` holds the keys that define the run; the first run records them in output_dir/run_identity.json."""
    path = os.path.join(output_dir, "run_identity.json")
    identity = json.loads(json.dumps(identity, default=str))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = [k for k in sorted(set(previous) | set(identity), key=lambda k: (k not in previous, k))
                   if previous.get(k) != identity.get(k)]  # keys the old run recorded come first
        if changed:
            k = changed[0]
            raise RecipeError(f"output_dir: {output_dir} holds a different run ({k}: {previous.get(k)!r} there, "
                              f"{identity.get(k)!r} now); choose a new output_dir or delete it")
    elif os.path.isdir(output_dir) and glob.glob(os.path.join(output_dir, "checkpoint-*")):
        raise RecipeError(f"output_dir: {output_dir} holds checkpoints of an unknown run; choose a new output_dir")
    os.makedirs(output_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # atomic: several processes of one distributed run write the same file
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(identity, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)


def markdown_table(headers, rows):
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if math.isfinite(v) else str(v)
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def loss_summary(log_history, key="loss"):
    """First and last logged training values of `key` from a Trainer's log history."""
    values = [entry[key] for entry in log_history if key in entry]
    return {f"{key}_first": values[0], f"{key}_last": values[-1]} if values else {}


def plan(args, training_args, model_args, push=None):
    """What a training stage would run (for --dry_run): model, data, LoRA, batch, precision, hub repository."""
    lora = f"LoRA r={model_args.lora_r} alpha={model_args.lora_alpha}" if model_args.use_peft else "full fine-tuning"
    batch = (training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps)
    return markdown_table(["key", "value"], [
        ["model", model_args.model_name_or_path], ["data", args.dataset_name or args.dataset_mixture],
        ["training", lora], ["batch per device x accumulation", batch],
        ["precision", "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"],
        ["steps / epochs", training_args.max_steps if training_args.max_steps > 0 else training_args.num_train_epochs],
        ["output_dir", training_args.output_dir], ["push to hub", push or "no"]])
