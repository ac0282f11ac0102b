"""Builds this recipe's data files from real text (deterministic; the outputs are committed, run it again to check).

    python recipes/swallow-smollm2/data/prepare.py [--shared ../shared/data]

Sources (CC BY-SA; see README.md here): Japanese Wikipedia paragraphs (the contexts of JGLUE v1.3 JSQuAD test,
59 articles, `data/jglue-v1.3/` in this repository), English Wikipedia (wikitext-2 valid, 60 articles) and the
JCommonsenseQA v1.3 train split. Articles are split by title, so no dev paragraph shares an article with training.

Writes:
- ja_train.jsonl / ja_dev.jsonl: paragraphs of 49 / 10 articles (continued pretraining / held-out bits per character)
- en_train.jsonl / en_dev.jsonl: 50 / 10 English articles, en_dev cut to `EN_DEV_CHARS` characters per article
- sft.jsonl, dpo.jsonl: FLAN-style Japanese instructions over the training articles (no JGLUE labels used):
  article title, a short first sentence, the first year named, the first 「」 term; DPO (other items than SFT's) rejects another article's answer, or
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
YEAR = re.compile(r"\d{3,4}年")
QUOTED = re.compile(r"「([^「」]{2,15})」")
FIRST_SENTENCE_CHARS = 40  # a first sentence to copy: longer copies loop in a 135M model after 14 CPT steps
CONTEXT_CHARS = 120  # of a paragraph shown in a prompt (short prompts: more SFT steps in the budget)


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
    """(template name, prompt text, answer, a wrong answer) per paragraph. Every answer is short and stands in (or
    names) the context, so a 135M model can learn where it ends; an open-ended "next sentence" task taught it to loop."""
    titles = sorted({r["title"] for r in rows})
    firsts = {r["title"]: [x for x in sentences(r["text"])[:1] if short(x)] for r in rows}
    years = sorted({m for r in rows for m in YEAR.findall(r["text"])})
    terms = sorted({m for r in rows for m in QUOTED.findall(r["text"])})
    out = []
    for r in rows:
        text, title = r["text"], r["title"]
        context = text[:CONTEXT_CHARS]
        other = rng.choice([t for t in titles if t != title])
        out.append(("title", f"次の文章はどの記事の一部ですか。記事名だけを答えてください。\n\n{context}", title, other))
        sents = sentences(text)
        if sents and short(sents[0], FIRST_SENTENCE_CHARS) and len(sents[0]) <= len(context):
            wrong = rng.choice([x for t, xs in firsts.items() if t != title for x in xs] or ["。"])
            out.append(("first_sentence", f"次の文章の最初の一文を書き出してください。\n\n{context}", sents[0], wrong))
        found = YEAR.findall(context)
        if found:
            wrong = rng.choice([y for y in years if y not in found])
            out.append(("first_year", f"次の文章に最初に出てくる年を答えてください。\n\n{context}", found[0], wrong))
        quoted = QUOTED.findall(context)
        if quoted:
            wrong = rng.choice([x for x in terms if x not in quoted])
            out.append(("quoted", f"次の文章で「」に囲まれた最初の語を答えてください。\n\n{context}", quoted[0], wrong))
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
