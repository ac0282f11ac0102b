"""Builds this recipe's data files from real text (deterministic; the outputs are committed, run it again to check).

    python recipes/swallow-smollm2/data/prepare.py [--shared ../shared/data]

Sources (CC BY-SA; see README.md here): Japanese Wikipedia paragraphs (the contexts of JGLUE v1.3 JSQuAD test,
59 articles, `data/jglue-v1.3/` in this repository), English Wikipedia (wikitext-2 valid, 60 articles) and the
JCommonsenseQA v1.3 train split. Articles are split by title, so no dev paragraph shares an article with training.

Writes:
- ja_train.jsonl / ja_dev.jsonl: paragraphs of 49 / 10 articles (continued pretraining / held-out bits per character)
- en_train.jsonl / en_dev.jsonl: 50 / 10 English articles, en_dev cut to `EN_DEV_CHARS` characters per article
- sft.jsonl, dpo.jsonl: FLAN-style Japanese instructions over the training articles (no JGLUE labels used):
  article title, first sentence, next sentence; DPO (other items than SFT's) rejects another article's answer, or
  (every other pair) the right answer run on into another sentence, which rewards stopping at the end of the answer
- sft_eval.jsonl: the same templates over dev articles (held-out prompts for the EOS check)
- jcqa_eval.jsonl / jcqa_fewshot.jsonl: 1,119 JCommonsenseQA questions (the size of the official valid split, which
  is not available offline here) and a disjoint pool of 500 for few-shot examples, both from the train split
- gen_prompts.jsonl: beginnings of dev paragraphs for generation speed (characters per second)
"""

import argparse
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
EN_DEV_CHARS = 3000
MAX_PAIRS = 1000  # SFT examples, and DPO pairs (from other paragraphs than SFT's)
SENTENCE = re.compile(r"[^。]*。")


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def split_by_title(rows, every=6):
    titles = sorted({r["title"] for r in rows})
    dev = set(titles[::every])
    return [r for r in rows if r["title"] not in dev], [r for r in rows if r["title"] in dev]


def sentences(text):
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def short(sentence, longest=60):
    """A reply short enough to end (EOS) well inside a generation budget."""
    return 8 <= len(sentence) <= longest


def chat(user, reply=None):
    messages = [{"role": "user", "content": user}]
    return messages if reply is None else (messages, [{"role": "assistant", "content": reply}])


def instructions(rows, rng):
    """(template name, prompt text, answer, a wrong answer) per paragraph."""
    titles = sorted({r["title"] for r in rows})
    out = []
    for r in rows:
        text, title = r["text"], r["title"]
        other = rng.choice([t for t in titles if t != title])
        out.append(("title", f"次の文章はどの記事の一部ですか。記事名だけを答えてください。\n\n{text[:200]}", title, other))
        sents = sentences(text)
        firsts = [x for r2 in rows if r2["title"] != title for x in sentences(r2["text"])[:1] if short(x)]
        if sents and short(sents[0]):
            out.append(("first_sentence", f"次の文章の最初の一文を書き出してください。\n\n{text[:200]}", sents[0],
                        rng.choice(firsts or ["。"])))
        pairs = [(a, b) for a, b in zip(sents, sents[1:]) if short(b) and len(a) <= 120]
        if pairs:
            before, after = pairs[0]
            wrong = next((x for x in sents if x not in (before, after) and short(x)), rng.choice(firsts or ["。"]))
            out.append(("next_sentence", f"次の文に続く一文を書いてください。\n\n{before}", after, wrong))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jglue", default=os.path.join(REPO, "data", "jglue-v1.3"))
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    args = parser.parse_args()
    rng = random.Random(0)

    ja_train, ja_dev = split_by_title(read(os.path.join(args.jglue, "ja_wikipedia_paragraphs.jsonl")))
    write("ja_train.jsonl", [{"id": r["id"], "text": r["text"]} for r in ja_train])
    write("ja_dev.jsonl", [{"id": r["id"], "text": r["text"]} for r in ja_dev])
    en_train, en_dev = split_by_title(read(os.path.join(args.shared, "en_wikitext2_valid_articles.jsonl")))
    write("en_train.jsonl", [{"id": r["id"], "text": r["text"]} for r in en_train])
    write("en_dev.jsonl", [{"id": r["id"], "text": r["text"][:EN_DEV_CHARS].rsplit(" ", 1)[0]} for r in en_dev])

    train_items = instructions(ja_train, rng)
    rng.shuffle(train_items)
    write("sft.jsonl", [dict(zip(("prompt", "completion"), chat(p, a))) for _, p, a, _ in train_items[:MAX_PAIRS]])
    pairs = [(p, a, w) for _, p, a, w in train_items[MAX_PAIRS:] if w != a][:MAX_PAIRS]
    write("dpo.jsonl", [{"prompt": chat(p), "chosen": chat(p, a)[1], "rejected": chat(p, w if i % 2 else a + w)[1]}
                        for i, (p, a, w) in enumerate(pairs)])  # rejected: a wrong answer, or the answer run on
    dev_items = instructions(ja_dev, random.Random(1))
    picked = [x for i, x in enumerate(dev_items) if i % 4 == 0][:60]
    write("sft_eval.jsonl", [{"messages": chat(p), "answer": a, "template": t} for t, p, a, _ in picked])
    write("gen_prompts.jsonl", [{"text": r["text"][:40]} for r in ja_dev[::8][:8]])

    jcqa = read(os.path.join(args.jglue, "jcommonsenseqa-train-v1.3.json"))
    write("jcqa_eval.jsonl", jcqa[-1119:])
    write("jcqa_fewshot.jsonl", jcqa[:500])


if __name__ == "__main__":
    main()
