"""Instruction and preference data formats, detected by their columns and converted to what TRL's trainers take.

SFT: `messages` (conversational) | `prompt`/`completion` | Dolly (`instruction`/`context`/`response`).
Preference: `prompt`/`chosen`/`rejected` (plain or conversational) | Anthropic HH transcripts (`chosen`/`rejected`
strings with "\\n\\nHuman:" / "\\n\\nAssistant:" turns -> shared conversational prompt + chosen / rejected replies).
KTO: unpaired `prompt`/`completion`/`label`; paired preference data is unpaired by TRL's `unpair_preference_dataset`
(chosen -> True, rejected -> False).

Bad records (chosen == rejected, an empty reply, a conversation not ending with an assistant turn) are counted and
shown with an example, then handled by the recipe's `on_bad_record` rule: `error` (stop, the default) or `drop`.
"""

import re

from llm_recipes.errors import RecipeError

FORMATS = {
    "messages": ["messages"], "kto": ["prompt", "completion", "label"], "preference": ["prompt", "chosen", "rejected"],
    "hh": ["chosen", "rejected"], "prompt_completion": ["prompt", "completion"], "dolly": ["instruction", "response"],
}
HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def detect(columns, name):
    for fmt, needed in FORMATS.items():
        if all(c in columns for c in needed):
            return fmt
    raise RecipeError(f"{name}: columns {sorted(columns)} match no known format (" +
                      "; ".join(f"{k}: {'/'.join(v)}" for k, v in FORMATS.items()) + ")")


def parse_hh(transcript):
    """'\\n\\nHuman: q\\n\\nAssistant: a ...' -> [{'role': 'user', ...}, {'role': 'assistant', ...}, ...]"""
    parts = HH_TURN.split(transcript)
    if len(parts) < 3 or parts[0].strip():
        raise ValueError("not an HH transcript (expected '\\n\\nHuman:' / '\\n\\nAssistant:' turns)")
    return [{"role": "user" if who == "Human" else "assistant", "content": text.strip()}
            for who, text in zip(parts[1::2], parts[2::2])]


def hh_to_preference(row):
    chosen, rejected = parse_hh(row["chosen"]), parse_hh(row["rejected"])
    if chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise ValueError("chosen and rejected must share every turn but the last assistant reply")
    return {"prompt": chosen[:-1], "chosen": [chosen[-1]], "rejected": [rejected[-1]]}


def dolly_to_messages(row):
    context = (row.get("context") or "").strip()
    user = row["instruction"].strip() + (f"\n\n{context}" if context else "")
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["response"]}]}


def text_of(value):
    return value if isinstance(value, str) else " ".join(m.get("content", "") for m in value or [])


def problem(fmt, row):
    """Why a record is bad, or None."""
    if fmt == "messages":
        if not row["messages"] or row["messages"][-1].get("role") != "assistant":
            return "does not end with an assistant turn"
        if not row["messages"][-1].get("content", "").strip():
            return "has an empty assistant reply"
    elif fmt in ("prompt_completion", "kto"):
        if not text_of(row["completion"]).strip():
            return "has an empty completion"
    elif fmt == "preference":
        if row["chosen"] == row["rejected"]:
            return "has chosen == rejected"
        if not text_of(row["chosen"]).strip() or not text_of(row["rejected"]).strip():
            return "has an empty chosen or rejected reply"
    return None


def clean(dataset, fmt, name, rule="error"):
    """Count bad records, show one, and apply the rule (error | drop). Returns (dataset, count)."""
    bad = [(i, reason) for i, row in enumerate(dataset) if (reason := problem(fmt, row))]
    if not bad:
        return dataset, 0
    example = f"record {bad[0][0] + 1} {bad[0][1]}"
    if rule == "error":
        raise RecipeError(f"{name}: {example} ({len(bad)} bad record(s); on_bad_record: drop skips them)")
    print(f"{name}: dropping {len(bad)} bad record(s), e.g. {example}")
    drop = {i for i, _ in bad}
    return dataset.select([i for i in range(len(dataset)) if i not in drop]), len(bad)


def _convert(dataset, fn, name):
    try:
        return dataset.map(fn, remove_columns=dataset.column_names)
    except ValueError as e:
        raise RecipeError(f"{name}: {e}") from None


def for_sft(dataset, name, rule="error"):
    fmt = detect(dataset.column_names, name)
    if fmt == "dolly":
        dataset, fmt = _convert(dataset, dolly_to_messages, name), "messages"
    if fmt not in ("messages", "prompt_completion"):
        raise RecipeError(f"{name}: {fmt} data is preference data, not SFT data (use scripts/dpo.py)")
    return clean(dataset, fmt, name, rule)


def for_preference(dataset, name, rule="error"):
    fmt = detect(dataset.column_names, name)
    if fmt == "hh":
        dataset, fmt = _convert(dataset, hh_to_preference, name), "preference"
    if fmt != "preference":
        raise RecipeError(f"{name}: {fmt} data has no chosen/rejected pairs")
    return clean(dataset, fmt, name, rule)


def for_kto(dataset, name, rule="error"):
    fmt = detect(dataset.column_names, name)
    if fmt in ("preference", "hh"):
        from trl.data_utils import unpair_preference_dataset

        pairs, bad = for_preference(dataset, name, rule)
        return unpair_preference_dataset(pairs), bad
    if fmt != "kto":
        raise RecipeError(f"{name}: {fmt} data has no prompt/completion/label (or chosen/rejected) records")
    return clean(dataset, fmt, name, rule)
