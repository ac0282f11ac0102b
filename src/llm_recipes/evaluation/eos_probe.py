"""Scoring for the EOS-boundary probe: log-likelihood of each candidate answer after a prefix (batched, like lm-eval's
loglikelihood requests), greedy answers, and completion-token loss."""

import math


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def continuation_logprobs(model, tokenizer, pairs, batch_size=32):
    """Sum of log p(continuation tokens | prefix) for each (prefix, continuation) string pair. Prefix and continuation
    are tokenized separately and concatenated, so the continuation's tokens are the same after every prefix."""
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
            logprobs = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float().log_softmax(-1)
        for row, (p, c) in enumerate(chunk):
            positions = torch.arange(len(p) - 1, len(p) + len(c) - 1)
            scores.append(float(logprobs[row, positions, torch.tensor(c)].sum()))
    return scores


def choice_scores(model, tokenizer, records, prefix_of, reply="{}です。"):
    """For each record (with `answer` and `candidates`): the probability of the right answer normalised over the
    candidates (softmax of their log-likelihoods) and whether it ranks first."""
    pairs = [(prefix_of(r), reply.format(c)) for r in records for c in r["candidates"]]
    flat, out, i = continuation_logprobs(model, tokenizer, pairs), [], 0
    for r in records:
        scores = flat[i:i + len(r["candidates"])]
        i += len(r["candidates"])
        top = max(scores)
        total = sum(math.exp(s - top) for s in scores)
        right = r["candidates"].index(r["answer"])
        out.append({"p_answer": math.exp(scores[right] - top) / total, "correct": scores[right] == top})
    return out


def greedy_answers(model, tokenizer, prefixes, max_new_tokens=8):
    """The model's greedy continuation of each prefix (raw text, special tokens dropped)."""
    from llm_recipes.generation import generate

    return [g[0].text for g in generate(model, tokenizer, list(prefixes), max_new_tokens, chat=False)]


def completion_loss(model, tokenizer, records):
    """Mean negative log-likelihood per completion token (completion + EOS, as SFT trains it) over the records."""
    pairs = [(r["prompt"], r["completion"] + tokenizer.eos_token) for r in records]
    tokens = sum(len(tokenizer(c, add_special_tokens=False).input_ids) for _, c in pairs)
    return -sum(continuation_logprobs(model, tokenizer, pairs)) / max(tokens, 1)
