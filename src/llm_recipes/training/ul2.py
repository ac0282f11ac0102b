"""UL2 mixture of denoisers (Tay et al. 2022, "UL2: Unifying Language Learning Paradigms", arXiv 2205.05131) for a
decoder-only model, as a data collator over the packed pretraining blocks: the Trainer, its loop, optimizer and
checkpoints stay the plain ones, and evaluation keeps the causal collator (held-out loss comparable with plain LM).

    objective: ul2                                       # keys of scripts/pretrain.py (default objective: causal)
    ul2:
      denoisers:
        - {mode: R, mean_span: 3, corruption_rate: 0.15, weight: 1}   # R: short spans, light corruption
        - {mode: S, corruption_rate: 0.25, weight: 1}                 # S: prefix LM, the last 25 % is the target
        - {mode: X, mean_span: 32, corruption_rate: 0.5, weight: 1}   # X: long spans and/or heavy corruption

Each training block draws one denoiser by weight. The causal reformulation of an R / X example is

    [R] t1 t2 <extra_id_0> t5 ... <extra_id_1> ... [SEP] <extra_id_0> t3 t4 <extra_id_1> ...
    |--------- mode token + corrupted text -------|     |--- targets: sentinel + span, in order ---|

with labels -100 everywhere but the targets. Spans follow T5's `random_spans_noise_mask`: round(n x rate) noise
tokens in max(1, round(noise / mean_span)) spans, the noise and the kept tokens each cut into that many non-empty runs
at uniformly random points, kept and noise runs alternating (as in T5, the text starts with kept tokens and ends with
noise). An S example is `[S]` + the text, the loss on its last round(n x rate) tokens (a prefix LM trained causally).
The text taken from a block is the longest prefix whose example fits in block_size (n + 2 x spans + 2 tokens for R / X,
n + 1 for S); the rest of the block is dropped and a short example is right-padded (labels -100), so every step
computes the same positions as plain causal LM. Mode tokens are the paper's names (the released UL2 checkpoint spells
them [NLU] / [S2S] / [NLG]); sentinels are T5's.
"""

import numpy as np
import torch

from llm_recipes.errors import RecipeError

MODE_TOKENS = {"R": "[R]", "S": "[S]", "X": "[X]"}
SEPARATOR = "[SEP]"
DENOISER_KEYS = {"mode", "mean_span", "corruption_rate", "weight"}
FORMAT = "ul2: {denoisers: [{mode: R|S|X, mean_span (R, X), corruption_rate, weight}, ...]}"


def sentinel(i):
    return f"<extra_id_{i}>"


def check_objective(objective, ul2, token_selection=None):
    """`objective` / `ul2` of a pretraining recipe, checked when the recipe is parsed; the denoisers with defaults."""
    if objective not in ("causal", "ul2"):
        raise RecipeError(f"objective: '{objective}' is not one of causal, ul2")
    if objective == "causal":
        if ul2 is not None:
            raise RecipeError("ul2: set, but objective is causal (set objective: ul2, or drop ul2)")
        return None
    if token_selection is not None:
        raise RecipeError("objective: ul2 and token_selection (Rho-1) are mutually exclusive: the UL2 collator decides "
                          "which tokens carry the loss; use one of them")
    if not isinstance(ul2, dict) or set(ul2) != {"denoisers"} or not isinstance(ul2["denoisers"], list) \
            or not ul2["denoisers"]:
        raise RecipeError(f"ul2: expected {FORMAT}; got {ul2}")
    denoisers = []
    for i, d in enumerate(ul2["denoisers"]):
        where = f"ul2.denoisers[{i}]"
        if not isinstance(d, dict) or set(d) - DENOISER_KEYS or d.get("mode") not in MODE_TOKENS:
            raise RecipeError(f"{where}: expected {{mode: R|S|X, mean_span, corruption_rate, weight}}; got {d}")
        rate, weight, span = d.get("corruption_rate"), d.get("weight", 1.0), d.get("mean_span")
        if not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise RecipeError(f"{where}.corruption_rate: {rate!r} must be in (0, 1)")
        if not isinstance(weight, (int, float)) or weight <= 0:
            raise RecipeError(f"{where}.weight: {weight!r} must be > 0")
        if d["mode"] == "S" and span is not None:
            raise RecipeError(f"{where}.mean_span: the S-denoiser (prefix LM) has no spans; drop mean_span")
        if d["mode"] != "S" and (not isinstance(span, (int, float)) or span < 1):
            raise RecipeError(f"{where}.mean_span: {span!r} must be a number >= 1 for mode {d['mode']}")
        denoisers.append({"mode": d["mode"], "mean_span": span, "corruption_rate": float(rate),
                          "weight": float(weight)})
    return denoisers


def span_counts(n, denoiser):
    """(noise tokens, spans) for n text tokens, as T5's random_spans_noise_mask counts them."""
    noise = min(max(round(n * denoiser["corruption_rate"]), 1), n - 1)
    if denoiser["mode"] == "S":
        return noise, 0
    return noise, min(max(round(noise / denoiser["mean_span"]), 1), n - noise)


def example_length(n, denoiser):
    """Tokens of the example built from n text tokens: mode + text (S), or mode + text + 2 per span + separator."""
    return n + 1 + (0 if denoiser["mode"] == "S" else 2 * span_counts(n, denoiser)[1] + 1)


def text_length(block_size, denoiser):
    """The longest text n whose example fits in block_size tokens."""
    n = block_size - 1
    while n > 1 and example_length(n, denoiser) > block_size:
        n -= 1
    if n < 2:
        raise RecipeError(f"block_size {block_size}: too short for the UL2 denoiser {denoiser}")
    return n


def required_tokens(denoisers, block_size):
    """Mode tokens, separator and sentinels (as many as the most spans any denoiser makes) the tokenizer needs."""
    spans = max(span_counts(text_length(block_size, d), d)[1] for d in denoisers)
    modes = [MODE_TOKENS[m] for m in dict.fromkeys(d["mode"] for d in denoisers)]
    return modes + ([SEPARATOR] + [sentinel(i) for i in range(spans)] if spans else [])


def add_missing_tokens(tokenizer, tokens):
    """Add the UL2 tokens the tokenizer lacks as special tokens (a continued-pretraining base model's tokenizer);
    a recipe's own tokenizer should declare them (tokenizer stage `additional_special_tokens`). Returns those added."""
    missing = [t for t in tokens if tokenizer.convert_tokens_to_ids(t) is None]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
        print(f"ul2: added {len(missing)} special tokens to the tokenizer ({missing[0]} ... {missing[-1]}); the "
              f"embedding grows to {len(tokenizer)} rows if it is smaller")
    return missing


def grow_embeddings(model, tokenizer):
    """Resize a loaded model's embeddings when the UL2 tokens made the tokenizer longer (new rows: mean init)."""
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))


def random_spans(n, denoiser, rng):
    """[(start, length)] of the noise spans in n tokens (T5's random_spans_noise_mask with numpy's Generator)."""
    noise, spans = span_counts(n, denoiser)

    def segments(items):  # `items` cut into `spans` non-empty runs at uniformly random points
        cuts = np.sort(rng.choice(items - 1, spans - 1, replace=False)) + 1 if spans > 1 else np.array([], int)
        return np.diff(np.concatenate([[0], cuts, [items]]))

    noise_lengths, kept_lengths = segments(noise), segments(n - noise)
    starts = np.cumsum(kept_lengths) + np.concatenate([[0], np.cumsum(noise_lengths)[:-1]])
    return [(int(s), int(length)) for s, length in zip(starts, noise_lengths)]


class UL2Collator:
    """Packed blocks -> UL2 examples of the same length (input_ids, labels, attention_mask). `counts` keeps examples
    and loss tokens per denoiser for the report (collated in this process). The random stream is seeded by (seed, rank,
    data-loader worker), so processes and workers do not draw the same denoisers and spans."""

    def __init__(self, tokenizer, denoisers, block_size, seed=0, rank=0):
        self.denoisers, self.block_size = denoisers, block_size
        needed = required_tokens(denoisers, block_size)
        ids = dict(zip(needed, tokenizer.convert_tokens_to_ids(needed)))
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise RecipeError(f"tokenizer: lacks the UL2 tokens {missing}; declare them in the tokenizer stage's "
                              f"additional_special_tokens (or let scripts/pretrain.py add them)")
        self.ids = ids
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.weights = np.array([d["weight"] for d in denoisers]) / sum(d["weight"] for d in denoisers)
        self.seed, self.rank, self.worker, self._rng = seed, rank, None, None
        self.counts = {self.name(d): {"examples": 0, "loss_tokens": 0, "text_tokens": 0} for d in denoisers}
        self.lengths = {self.name(d): text_length(block_size, d) for d in denoisers}

    @property
    def rng(self):
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        worker = info.id if info else -1
        if self._rng is None or worker != self.worker:
            self.worker, self._rng = worker, np.random.default_rng([self.seed, self.rank, worker + 1])
        return self._rng

    @staticmethod
    def name(d):
        span = "" if d["mode"] == "S" else f"mean_span={d['mean_span']:g}, "
        return f"{d['mode']}({span}rate={d['corruption_rate']:g})"

    def example(self, ids, denoiser):
        """One block's example: (input_ids, labels) before padding, from the first text_length tokens of the block."""
        ids = list(ids[:text_length(min(len(ids), self.block_size), denoiser)])
        mode = self.ids[MODE_TOKENS[denoiser["mode"]]]
        if denoiser["mode"] == "S":
            noise, _ = span_counts(len(ids), denoiser)
            cut = len(ids) - noise
            return [mode, *ids], [-100] * (cut + 1) + ids[cut:]
        inputs, targets, end = [mode], [], 0
        for i, (start, length) in enumerate(random_spans(len(ids), denoiser, self.rng)):
            marker = self.ids[sentinel(i)]
            inputs += ids[end:start] + [marker]
            targets += [marker] + ids[start:start + length]
            end = start + length
        inputs += ids[end:] + [self.ids[SEPARATOR]]
        return inputs + targets, [-100] * len(inputs) + targets

    def __call__(self, examples):
        rows, labels, masks = [], [], []
        for e in examples:
            denoiser = self.denoisers[self.rng.choice(len(self.denoisers), p=self.weights)]
            ids, lab = self.example(e["input_ids"], denoiser)
            count = self.counts[self.name(denoiser)]
            count["examples"] += 1
            count["loss_tokens"] += sum(t != -100 for t in lab)
            count["text_tokens"] += min(self.lengths[self.name(denoiser)], len(e["input_ids"]))
            pad = self.block_size - len(ids)
            rows.append(ids + [self.pad] * pad)
            labels.append(lab + [-100] * pad)
            masks.append([1] * len(ids) + [0] * pad)
        return {"input_ids": torch.tensor(rows), "labels": torch.tensor(labels), "attention_mask": torch.tensor(masks)}


class CausalEvalMixin:
    """Evaluation batches go through the plain causal collator: held-out loss is next-token loss on every token of
    the held-out blocks, as for a plain run."""

    def get_eval_dataloader(self, eval_dataset=None):
        from transformers import default_data_collator

        collator, self.data_collator = self.data_collator, default_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = collator


def ul2_summary(denoisers, collator):
    """Report keys of a UL2 run: the mixture, examples collated per denoiser (the data loader collates one batch ahead
    of training), the share of positions in the loss and the share of the blocks' text tokens the examples read (the
    rest of each block is dropped)."""
    if not denoisers:
        return {"objective": "causal"}
    counts = collator.counts if isinstance(collator, UL2Collator) else {}
    positions = sum(c["examples"] for c in counts.values()) * getattr(collator, "block_size", 0)
    return {"objective": "ul2", "ul2_denoisers": denoisers,
            "ul2_examples_collated": {k: c["examples"] for k, c in counts.items()},
            "ul2_loss_token_fraction": sum(c["loss_tokens"] for c in counts.values()) / positions if positions else None,
            "ul2_text_token_fraction": sum(c["text_tokens"] for c in counts.values()) / positions if positions else None}


def plan_lines(denoisers, block_size):
    """Dry-run lines: per denoiser, text tokens per block, spans, loss tokens; and the tokens the tokenizer needs."""
    lines = []
    for d in denoisers:
        n = text_length(block_size, d)
        noise, spans = span_counts(n, d)
        share = d["weight"] / sum(x["weight"] for x in denoisers)
        lines.append(f"ul2 {UL2Collator.name(d)}, {share:.0%} of blocks: {n} of "
                     f"{block_size} text tokens, {spans} spans, {noise + spans if spans else noise} loss tokens")
    tokens = required_tokens(denoisers, block_size)
    lines.append(f"ul2 tokens: {len(tokens)} ({', '.join(tokens[:5])}{' ...' if len(tokens) > 5 else ''}); those the "
                 f"tokenizer lacks are added as special tokens")
    return lines

