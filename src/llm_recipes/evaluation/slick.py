"""SliCK: Sampling-based Categorization of Knowledge (Gekhman et al. 2024, "Does fine-tuning LLMs on new knowledge
encourage hallucinations?", arXiv 2405.05904, section 3).

For a (question, answer) fact the model answers N_ex different few-shot prompts greedily and, at temperature T, several
times more by sampling. With P_correct(greedy) and P_correct(sampled) the fractions of exactly-matching answers (after
normalisation):

    HighlyKnown  P_correct(greedy) = 1
    MaybeKnown   0 < P_correct(greedy) < 1
    WeaklyKnown  P_correct(greedy) = 0 and P_correct(sampled) > 0
    Unknown      P_correct(greedy) = 0 and P_correct(sampled) = 0

The first three together are "Known". Generation goes through `generate_fn(prompts, do_sample, temperature,
num_return_sequences) -> [[text, ...] per prompt]`; `hf_generate_fn` builds it on transformers' `generate`
(llm_recipes.generation), tests may inject a deterministic one. Everything else here is the real categoriser.
"""

import random
import re
import unicodedata

from llm_recipes.errors import RecipeError

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
KNOWN, UNKNOWN = "Known", "Unknown"
ARTICLES = re.compile(r"\b(a|an|the)\b")


def category(p_greedy, p_sampled):
    """The SliCK category from the two correctness probabilities (the paper's rules, section 3)."""
    if not (0.0 <= p_greedy <= 1.0 and 0.0 <= p_sampled <= 1.0):
        raise ValueError(f"probabilities must lie in [0, 1], got {p_greedy}, {p_sampled}")
    if p_greedy == 1.0:
        return "HighlyKnown"
    if p_greedy > 0.0:
        return "MaybeKnown"
    return "WeaklyKnown" if p_sampled > 0.0 else "Unknown"


def known(cat):
    """Known (HighlyKnown, MaybeKnown, WeaklyKnown) or Unknown: the split the paper's fine-tuning experiment uses."""
    return UNKNOWN if cat == "Unknown" else KNOWN


def normalize(text, stop="\n", suffixes=()):
    """Exact-match normalisation: the answer ends at `stop` (the next question of a few-shot pattern), NFKC, lower
    case, punctuation and the articles a/an/the removed, whitespace collapsed, then one of `suffixes` removed from the
    end (a Japanese copula such as です)."""
    text = unicodedata.normalize("NFKC", text)
    if stop:
        text = text.split(stop, 1)[0]
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    text = " ".join(ARTICLES.sub(" ", text).split())
    for suffix in suffixes:
        suffix = " ".join(unicodedata.normalize("NFKC", suffix).lower().split())
        if suffix and text.endswith(suffix) and text != suffix:
            text = text[:-len(suffix)].strip()
            break
    return text


def is_correct(prediction, answers, stop="\n", suffixes=()):
    """Exact match of the normalised prediction with the normalised answer (or any of a list of aliases)."""
    answers = [answers] if isinstance(answers, str) else answers
    pred = normalize(prediction, stop, suffixes)
    return any(pred == normalize(a, stop, suffixes) for a in answers)


def render(question, answer=None, template="Q: {question}\nA:", answer_template=" {answer}"):
    """One QA in the prompt pattern; without an answer, the query the model completes."""
    text = template.format(question=question)
    return text if answer is None else text + answer_template.format(answer=answer)


def fewshot_prompts(fact, pool, n_prompts, k_shot, rng, template, answer_template, separator="\n",
                    relation_key="relation"):
    """`n_prompts` prompts for one fact, each with `k_shot` exemplars drawn at random from `pool` (other questions of
    the same relation where the facts have one)."""
    others = [p for p in pool if p["question"] != fact["question"]
              and p.get(relation_key) == fact.get(relation_key)]
    if len(others) < k_shot:
        others = [p for p in pool if p["question"] != fact["question"]]
    if len(others) < k_shot:
        raise RecipeError(f"k_shot: {k_shot} exemplars needed, the few-shot pool has {len(others)} other questions")
    prompts = []
    for _ in range(n_prompts):
        shots = rng.sample(others, k_shot)
        parts = [render(s["question"], first(s["answer"]), template, answer_template) for s in shots]
        prompts.append(separator.join([*parts, render(fact["question"], None, template, answer_template)]))
    return prompts


def first(answer):
    return answer if isinstance(answer, str) else answer[0]


def categorise(facts, pool, generate_fn, n_prompts=4, k_shot=4, n_samples=4, temperature=0.5, seed=0,
               template="Q: {question}\nA:", answer_template=" {answer}", separator="\n", stop="\n", suffixes=(),
               relation_key="relation"):
    """SliCK categories of `facts` (dicts with question, answer [, relation, ...]): for each fact, n_prompts few-shot
    prompts answered greedily (P_correct(greedy) over n_prompts answers) and by sampling at `temperature`
    (n_samples per prompt, P_correct(sampled) over n_prompts x n_samples answers). Returns one row per fact: the fact's
    own keys plus p_greedy, p_sampled, category, known, the first greedy answer and the number of distinct answers (for a
    fact the model cannot know, drawn from k possible values, P(Known) = E[distinct answers] / k by chance alone)."""
    rng = random.Random(seed)
    prompts = [p for f in facts for p in fewshot_prompts(f, pool, n_prompts, k_shot, rng, template, answer_template,
                                                          separator, relation_key)]
    greedy = generate_fn(prompts, do_sample=False, temperature=1.0, num_return_sequences=1)
    sampled = generate_fn(prompts, do_sample=True, temperature=temperature, num_return_sequences=n_samples) \
        if n_samples else [[] for _ in prompts]
    rows = []
    for i, fact in enumerate(facts):
        g = [t for out in greedy[i * n_prompts:(i + 1) * n_prompts] for t in out[:1]]
        s = [t for out in sampled[i * n_prompts:(i + 1) * n_prompts] for t in out]
        p_greedy = sum(is_correct(t, fact["answer"], stop, suffixes) for t in g) / len(g)
        p_sampled = sum(is_correct(t, fact["answer"], stop, suffixes) for t in s) / len(s) if s else 0.0
        cat = category(p_greedy, p_sampled)
        rows.append({**fact, "p_greedy": p_greedy, "p_sampled": p_sampled, "category": cat, "known": known(cat),
                     "greedy_answer": normalize(g[0], stop, suffixes),
                     "distinct_answers": len({normalize(t, stop, suffixes) for t in g + s})})
    return rows


def greedy_accuracy(records, generate_fn, template="Q: {question}\nA:", stop="\n", suffixes=()):
    """Zero-shot greedy exact-match per record (a fine-tuned model answers the bare query): list of booleans."""
    outputs = generate_fn([render(r["question"], None, template) for r in records], do_sample=False,
                          temperature=1.0, num_return_sequences=1)
    return [is_correct(out[0], r["answer"], stop, suffixes) for out, r in zip(outputs, records)]


def hf_generate_fn(model, tokenizer, max_new_tokens=16, batch_size=64):
    """A generate_fn on transformers' `generate` (raw-text prompts; see llm_recipes.generation.generate)."""
    from llm_recipes.generation import generate

    def generate_fn(prompts, do_sample=False, temperature=1.0, num_return_sequences=1):
        out = generate(model, tokenizer, prompts, max_new_tokens, do_sample=do_sample, temperature=temperature,
                       num_return_sequences=num_return_sequences, batch_size=batch_size, chat=False)
        return [[g.text for g in group] for group in out]

    return generate_fn


def shares(rows):
    n = max(len(rows), 1)
    return {c: sum(r["category"] == c for r in rows) / n for c in CATEGORIES}


def agreement(rows, truth_key, expected):
    """Categories against what the data says the model saw: {group: {counts per category, n, expected, agreement}}
    where `expected` maps a truth group to Known or Unknown (groups without an expectation get counts only), and
    `overall` the agreement over all facts whose group has an expectation."""
    table, hits, total = {}, 0, 0
    for group in sorted({r.get(truth_key) for r in rows}, key=str):
        members = [r for r in rows if r.get(truth_key) == group]
        entry = {"n": len(members), **{c: sum(r["category"] == c for r in members) for c in CATEGORIES},
                 "mean_distinct_answers": sum(r.get("distinct_answers", 0) for r in members) / len(members)}
        if group in expected:
            if expected[group] not in (KNOWN, UNKNOWN):
                raise RecipeError(f"truth_expected: {group}: '{expected[group]}' is not Known or Unknown")
            agree = sum(r["known"] == expected[group] for r in members)
            entry.update(expected=expected[group], agreement=agree / len(members))
            hits, total = hits + agree, total + len(members)
        table[str(group)] = entry
    return {"groups": table, "overall": hits / total if total else None, "facts_with_expectation": total}


def mixture(rows, size, unknown_share, seed=0):
    """The paper's fine-tuning set D at a controlled Unknown share: `size` facts, round(size * unknown_share) of them
    Unknown, the rest Known. The same shuffle for every share, so the sets are nested prefixes per category."""
    rng = random.Random(seed)
    known_rows = [r for r in rows if r["known"] == KNOWN]
    unknown_rows = [r for r in rows if r["known"] == UNKNOWN]
    rng.shuffle(known_rows)
    rng.shuffle(unknown_rows)
    n_unknown = round(size * unknown_share)
    if n_unknown > len(unknown_rows) or size - n_unknown > len(known_rows):
        raise RecipeError(f"mixture: {size} facts at unknown_share {unknown_share} need {size - n_unknown} Known and "
                          f"{n_unknown} Unknown; the fine-tuning split has {len(known_rows)} Known and "
                          f"{len(unknown_rows)} Unknown (lower mixture_size)")
    chosen = known_rows[:size - n_unknown] + unknown_rows[:n_unknown]
    rng.shuffle(chosen)
    return chosen
