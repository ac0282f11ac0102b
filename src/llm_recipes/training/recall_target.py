"""Held-out in-context recall while training: log-likelihood of a continuation after a prefix (batched, like
lm-eval's loglikelihood requests) with greedy exactness, the recall of prompt/completion records whose answer is
copied from the prompt, and the training callback behind scripts/pretrain.py's `stop_at_recall` that stops at a
recall target. The EOS-boundary probe (evaluation/eos_probe.py) scores with the same continuation_scores."""

from transformers import TrainerCallback

from llm_recipes.data import load_records
from llm_recipes.errors import RecipeError


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def continuation_scores(model, tokenizer, pairs, batch_size=32):
    """For each (prefix, continuation) string pair: the sum of log p(continuation tokens | prefix), its token count, and
    whether greedy decoding would produce exactly those tokens (every token the argmax given the ones before, as
    lm-eval's `is_greedy`). Prefix and continuation are tokenized separately and concatenated, so the continuation's
    tokens are the same after every prefix."""
    import torch

    encoded = [(tokenizer(p, add_special_tokens=False).input_ids, tokenizer(c, add_special_tokens=False).input_ids)
               for p, c in pairs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores = []
    for chunk in _batches(encoded, batch_size):
        length = max(len(p) + len(c) for p, c in chunk)
        ids = torch.full((len(chunk), length), pad)
        mask = torch.zeros((len(chunk), length), dtype=torch.long)
        for row, (p, c) in enumerate(chunk):
            ids[row, :len(p) + len(c)] = torch.tensor(p + c)
            mask[row, :len(p) + len(c)] = 1
        with torch.no_grad():
            logprobs = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             use_cache=False).logits.float().log_softmax(-1).cpu()
        for row, (p, c) in enumerate(chunk):
            rows = logprobs[row, torch.arange(len(p) - 1, len(p) + len(c) - 1)]
            target = torch.tensor(c)
            scores.append({"logprob": float(rows[torch.arange(len(c)), target].sum()), "tokens": len(c),
                           "greedy": bool((rows.argmax(-1) == target).all())})
    return scores


def in_context_recall(model, tokenizer, records):
    """(records whose completion greedy decoding reproduces exactly, mean log p(completion)) for held-out
    prompt/completion records whose answer is copied from the prompt."""
    scores = continuation_scores(model, tokenizer, [(r["prompt"], r["completion"]) for r in records])
    return sum(s["greedy"] for s in scores), sum(s["logprob"] for s in scores) / len(scores)


class RecallTarget(TrainerCallback):
    """Stops training once held-out in-context recall reaches `min_recall`, checked every `every_steps` optimizer
    steps (a checkpoint is saved there): for a base whose copying arrives as a phase change at a seed-dependent step
    (recipes/packing-vs-padding). `history` holds (step, recall); `reached` the step that met the target."""

    def __init__(self, tokenizer, records, min_recall, every_steps):
        self.tokenizer, self.records, self.min_recall, self.every_steps = tokenizer, records, min_recall, every_steps
        self.history, self.reached = [], None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every_steps:
            return control
        training = model.training
        model.eval()
        recall = in_context_recall(model, self.tokenizer, self.records)[0] / len(self.records)
        model.train(training)
        self.history.append((state.global_step, recall))
        print(f"step {state.global_step}: held-out in-context recall {recall:.3f} (target {self.min_recall})",
              flush=True)
        if recall >= self.min_recall:
            self.reached = state.global_step
            control.should_training_stop = control.should_save = True
        return control


def recall_target(spec, tokenizer):
    """The RecallTarget of scripts/pretrain.py's `stop_at_recall: {dataset_name, min_recall, every_steps}`."""
    unknown = set(spec) - {"dataset_name", "min_recall", "every_steps"}
    every = spec.get("every_steps", 100)
    if unknown or "dataset_name" not in spec or not 0 < spec.get("min_recall", 0) <= 1 or \
            not isinstance(every, int) or every < 1:
        raise RecipeError(f"stop_at_recall: expected {{dataset_name, min_recall in (0, 1], every_steps >= 1}}; "
                          f"got {spec}")
    records = list(load_records(spec["dataset_name"], required_keys=["prompt", "completion"],
                                key="stop_at_recall.dataset_name"))
    return RecallTarget(tokenizer, records, spec["min_recall"], every)
