"""Batch layouts for the packing-vs-padding study, on top of TRL's collator, and what each optimizer step costs.

Every layout collates *the same examples* per micro-batch (the trainer's sampler and seed pick them; the layout only
arranges them), so the loss tokens of every micro-batch, and so of every optimizer step, are identical across layouts:
- padding:       one row per example, right-padded to the longest (TRL's default collator);
- padding_free:  all examples in one row, position ids restarting at 0 per example; transformers then keeps attention
                 inside each example (flash-attention varlen on GPU, a block-diagonal mask with sdpa/eager);
- packed:        all examples in one row with positions 0..L-1 and the plain causal mask, i.e. packing without a mask
                 change: each example attends to the ones before it across the [EOS] between them.
The first token of each example is never a target in any layout (in a row it has no predecessor; TRL masks it in the
flattened row), so counting `labels[:, 1:] != -100` gives the same number everywhere.
"""

import json
import os

from transformers import TrainerCallback

LAYOUTS = ("padding", "padding_free", "packed")
VARLEN_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx")


class LayoutCollator:
    """TRL's DataCollatorForLanguageModeling in the chosen layout; remembers what each collated micro-batch held."""

    def __init__(self, layout, pad_token_id, pad_to_multiple_of=None):
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self.layout = layout
        self.inner = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=layout != "padding",
                                                     pad_to_multiple_of=pad_to_multiple_of)
        self.pending = []  # micro-batch figures in collation order (the dataloader may collate one batch ahead)

    def __call__(self, examples):
        import torch

        batch = self.inner(examples)
        if self.layout == "packed":
            for key in VARLEN_KEYS:
                batch.pop(key, None)
            batch["position_ids"] = torch.arange(batch["input_ids"].shape[1])[None]
        self.pending.append({"examples": len(examples), "loss_tokens": int((batch["labels"][:, 1:] != -100).sum()),
                             "real_tokens": sum(len(e["input_ids"]) for e in examples),
                             "tokens": int(batch["input_ids"].numel())})
        return batch


class LayoutStats(TrainerCallback):
    """After each optimizer step, takes that step's micro-batches from the collator and appends one line to
    <output_dir>/layout_steps.jsonl: step, examples, loss tokens, real (non-pad) tokens, tokens computed. A resumed run
    appends again from the checkpoint's step; `read_steps` keeps the last line per step."""

    def __init__(self, collator, output_dir, accumulation_steps):
        self.collator, self.accumulation_steps = collator, accumulation_steps
        self.path = os.path.join(output_dir, "layout_steps.jsonl")

    def on_step_end(self, args, state, control, **kwargs):
        micro, self.collator.pending = (self.collator.pending[:self.accumulation_steps],
                                        self.collator.pending[self.accumulation_steps:])
        if state.is_world_process_zero:
            row = {"step": state.global_step, **{k: sum(m[k] for m in micro) for k in micro[0]}}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


def read_steps(output_dir):
    """The per-step layout figures of a run, one per step (the last written wins after a resume)."""
    path = os.path.join(output_dir, "layout_steps.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        rows = {r["step"]: r for r in map(json.loads, f)}
    return [rows[s] for s in sorted(rows)]


def summarize_steps(steps, train_seconds):
    """Real-token fraction and throughput (real tokens and computed tokens per second) of one run."""
    real, total = sum(s["real_tokens"] for s in steps), sum(s["tokens"] for s in steps)
    seconds = max(train_seconds, 1e-9)
    return {"real_token_fraction": real / max(total, 1),
            "real_tokens_per_s": real / seconds, "tokens_per_s": total / seconds}
