"""Rho-1 selective language modeling (Lin et al. 2024, arXiv 2404.07965) as a Trainer loss: a reference model, trained
first on a small high-quality set, scores every token; the training loss uses only the `ratio` share of a batch's
tokens with the highest excess loss L_theta - L_ref. Everything else (data, optimizer, schedule, checkpoints) is the
plain Trainer's, so a run with `token_selection` sees exactly the tokens a plain run sees.

    token_selection: {reference_model: outputs/rho1/reference, ratio: 0.6}   # a key of scripts/pretrain.py
"""

import json
import math
import os

import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from llm_recipes.errors import RecipeError

KEYS = {"reference_model", "ratio"}


def check_token_selection(config):
    """The recipe's `token_selection` mapping, checked: {reference_model: dir, ratio: 0 < r <= 1}."""
    if config is None:
        return None
    if not isinstance(config, dict) or set(config) != KEYS:
        raise RecipeError(f"token_selection: expected {{reference_model, ratio}}; got {config}")
    ratio = config["ratio"]
    if not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise RecipeError(f"token_selection.ratio: {ratio!r} must be in (0, 1]")
    return config


def token_losses(logits, labels):
    """Per-token next-token cross-entropy (labels shifted as in the causal-LM loss) and the mask of scored tokens."""
    targets = labels[:, 1:]
    mask = targets != -100
    losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets.masked_fill(~mask, 0), reduction="none")
    return losses * mask, mask


def select_tokens(losses, reference_losses, mask, ratio):
    """The top `ratio` share (ceil(ratio * scored tokens)) of the batch's scored tokens by excess loss
    L_theta - L_ref, as a boolean mask of the same shape."""
    excess = (losses.detach() - reference_losses).masked_fill(~mask, float("-inf")).flatten()
    k = math.ceil(ratio * int(mask.sum()))
    selected = torch.zeros_like(excess, dtype=torch.bool)
    selected[excess.topk(k).indices] = True
    return selected.view_as(mask) & mask


def selective_loss(logits, reference_logits, labels, ratio):
    """(loss over the selected tokens, selected mask, scored mask, per-token losses)."""
    losses, mask = token_losses(logits, labels)
    with torch.no_grad():
        reference_losses, _ = token_losses(reference_logits, labels)
    selected = select_tokens(losses, reference_losses, mask, ratio)
    return (losses * selected).sum() / selected.sum().clamp(min=1), selected, mask, losses


class TokenSelectionMixin:
    """compute_loss for a Trainer subclass: selective loss while training, the plain loss in evaluation (held-out loss
    stays comparable with plain pretraining). Each training log line gains `selected_token_fraction` and
    `loss_all_tokens` (the plain loss of the same batches); each optimizer step's counts go to
    output_dir/token_selection.jsonl."""

    loss_is_scaled_for_ga = False  # a per-micro-batch mean: Trainer divides by the accumulation steps

    def __init__(self, *args, reference_model=None, ratio=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.reference_model = reference_model.eval().requires_grad_(False)
        self.ratio = ratio
        self.step_counts, self.log_counts = _zero(), _zero()
        self.add_callback(TokenSelectionCallback(self))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        features = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**features)
        if next(self.reference_model.parameters()).device != outputs.logits.device:
            self.reference_model.to(outputs.logits.device)
        with torch.no_grad():
            reference_logits = self.reference_model(**features).logits
        if reference_logits.shape[-1] != outputs.logits.shape[-1]:
            raise RecipeError(f"token_selection.reference_model: vocabulary {reference_logits.shape[-1]} differs from "
                              f"the model's {outputs.logits.shape[-1]} (use the same tokenizer)")
        loss, selected, mask, losses = selective_loss(outputs.logits, reference_logits, labels, self.ratio)
        for counts in (self.step_counts, self.log_counts):
            counts["selected"] += int(selected.sum())
            counts["scored"] += int(mask.sum())
            counts["loss_sum"] += float(losses.detach().sum())
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, start_time=None):
        if "loss" in logs and self.log_counts["scored"]:
            scored = self.log_counts["scored"]
            logs.update(selected_token_fraction=round(self.log_counts["selected"] / scored, 4),
                        loss_all_tokens=round(self.log_counts["loss_sum"] / scored, 4))
            self.log_counts = _zero()
        super().log(logs, start_time)


def _zero():
    return {"selected": 0, "scored": 0, "loss_sum": 0.0}


class TokenSelectionCallback(TrainerCallback):
    """Appends each optimizer step's selected / scored token counts to output_dir/token_selection.jsonl."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        counts = self.trainer.step_counts
        if state.is_world_process_zero and counts["scored"]:
            with open(os.path.join(args.output_dir, "token_selection.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, "selected": counts["selected"],
                                    "scored": counts["scored"],
                                    "selected_token_fraction": round(counts["selected"] / counts["scored"], 6)}) + "\n")
        self.trainer.step_counts = _zero()


def read_selection_log(output_dir):
    """Per-step records of token_selection.jsonl (the last record per step: a resumed run may repeat steps)."""
    path = os.path.join(output_dir, "token_selection.jsonl")
    if not os.path.isfile(path):
        return []
    steps = {}
    for line in open(path, encoding="utf-8"):
        record = json.loads(line)
        steps[record["step"]] = record
    return [steps[s] for s in sorted(steps)]


def selection_summary(args, output_dir):
    """Report keys of a run with token_selection: the ratio asked for and the share of tokens the loss used."""
    if not args.token_selection:
        return {}
    import glob

    steps = [r for d in [output_dir, *sorted(glob.glob(os.path.join(output_dir, "stage_*")))]
             for r in read_selection_log(d)]
    selected, scored = sum(r["selected"] for r in steps), sum(r["scored"] for r in steps)
    fractions = [r["selected_token_fraction"] for r in steps]
    return {"token_selection": args.token_selection, "selected_tokens": selected, "scored_tokens": scored,
            "selected_token_fraction": selected / scored if scored else None,
            "selected_token_fraction_min": min(fractions, default=None),
            "selected_token_fraction_max": max(fractions, default=None)}
