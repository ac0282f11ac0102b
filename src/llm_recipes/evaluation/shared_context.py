"""lm-eval's Hugging Face model with one change: the log-likelihood requests that share a context (the choices of a
multiple-choice question, with their few-shot prompt) are scored with ONE forward pass over the context, whose key /
value cache the continuations then extend in one batch. lm-eval's HF backend runs the whole context + continuation
once per choice (its `logits_cache` only helps one-token continuations), so a 3-shot, 5-choice task costs it ~5x the
context tokens. Registered as lm-eval model `hf-shared`: tasks, metrics, few-shot sampling and output files stay
lm-eval's own.

    lm_eval.simple_evaluate(model="hf-shared", model_args={"pretrained": DIR, "dtype": "bfloat16"}, tasks=[...])

Exactness: each continuation token is scored from the same positions and the same cached context as a full pass (in
float32 the log-likelihoods equal the stock backend's to ~1e-5; tests/test_shared_context.py). On a CPU, lone
requests (rolling windows for bits per character) take the same path one at a time, which avoids the stock path's
float32 log-softmax over [batch, padded length, vocabulary]; on a GPU they keep lm-eval's padded batches. Requests that
would be truncated go to the stock code path.
"""

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm


@register_model("hf-shared")
class SharedContextLM(HFLM):
    def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
        if self.backend != "causal":
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        groups, single = {}, []
        for i, (_, context, continuation) in enumerate(requests):
            if len(context) + len(continuation) > self.max_length + 1:
                single.append(i)  # truncation: the stock path handles it as lm-eval does
            else:  # a one-token context (rolling windows start from the prefix token) is not worth sharing
                groups.setdefault(tuple(context) if len(context) > 1 else (i,), []).append(i)
        if self.device.type == "cuda":  # on a GPU lm-eval's padded batches serve lone requests well
            for context, members in list(groups.items()):
                if len(members) < 2:
                    single += members
                    del groups[context]
        results = [None] * len(requests)
        if single:
            for i, answer in zip(single, super()._loglikelihood_tokens([requests[i] for i in single], disable_tqdm,
                                                                     override_bs)):
                results[i] = answer
        pbar = tqdm(total=sum(len(m) for m in groups.values()), disable=disable_tqdm or self.rank != 0,
                    desc="Running loglikelihood requests (shared context)")
        for _, members in sorted(groups.items(), key=lambda kv: -len(requests[kv[1][0]][1])):
            answers = self._score_group(requests[members[0]][1], [requests[i][2] for i in members])
            for i, answer in zip(members, answers):
                results[i] = answer
                if requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
            pbar.update(len(members))
        pbar.close()
        return results

    def _score_group(self, context, continuations):
        """(sum of log-probabilities, greedy?) of each continuation after `context`, from one context pass."""
        device = self.device
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            ctx = torch.tensor([context], dtype=torch.long, device=device)
            out = self.model(ctx, use_cache=True, logits_to_keep=1)
            first = F.log_softmax(out.logits[0, -1].float(), dim=-1, dtype=self.softmax_dtype)  # next after context
            cache = out.past_key_values
            n = len(continuations)
            longest = max(len(c) for c in continuations)
            rest = None
            if longest > 1:  # continuation tokens after the first, scored in one batch over the shared cache
                width = longest - 1
                ids = torch.full((n, width), self.tokenizer.pad_token_id or 0, dtype=torch.long, device=device)
                mask = torch.zeros((n, len(context) + width), dtype=torch.long, device=device)
                mask[:, :len(context)] = 1
                for j, cont in enumerate(continuations):
                    ids[j, :len(cont) - 1] = torch.tensor(cont[:-1], dtype=torch.long)
                    mask[j, len(context):len(context) + len(cont) - 1] = 1
                cache.batch_repeat_interleave(n)
                positions = torch.arange(len(context), len(context) + width, device=device).expand(n, -1)
                logits = self.model(ids, attention_mask=mask if n > 1 else None, position_ids=positions,
                                    past_key_values=cache, use_cache=False).logits
                rest = F.log_softmax(logits.float(), dim=-1, dtype=self.softmax_dtype)
        answers = []
        for j, cont in enumerate(continuations):
            tokens = torch.tensor(cont, device=device)
            rows = first.unsqueeze(0) if len(cont) == 1 else torch.cat([first.unsqueeze(0), rest[j, :len(cont) - 1]])
            logprob = float(rows.gather(1, tokens.unsqueeze(1)).sum())
            answers.append((logprob, bool((rows.argmax(dim=-1) == tokens).all())))
        return answers
