"""Generate the tiny recipe's data: a small fictional "world" and every dataset the pipeline needs.

    python recipes/tiny/data/prepare.py            # rewrites the files next to it

Deterministic for a given --seed (the files in recipes/tiny/data are its output; a test checks that they match).
Recipes keep byte-identical copies of the files they use in their own data/ (a test checks every copy); refresh one
with `python recipes/tiny/data/prepare.py --output_dir recipes/ja-web/data --only docs.jsonl`.

The world: fictional villages, each with three attributes (specialty fruit, guardian animal, flag colour).
- docs.jsonl      Japanese and English documents describing every village, plus planted noise the corpus stage must
                  handle: exact duplicates, near-duplicates, repetitive spam, wrong-language text, and PII (emails and
                  Japanese phone numbers) inside otherwise clean documents.
- truth.json      what was planted where (ids), so tests can measure the corpus stage against it.
- sft.jsonl       conversations (messages) asking about *train* villages.
- sft_eval.jsonl  held-out prompts (test villages) for generation checks.
- dpo.jsonl       prompt / chosen (correct) / rejected (wrong attribute of the same kind), train villages.
- dpo_hh.jsonl    the same preferences inside a short conversation, as Anthropic HH transcripts (train villages).
- dpo_eval.jsonl  held-out preference pairs about test villages.
- eval_mc.jsonl   held-out multiple-choice questions (test villages) in JCommonsenseQA's format: question,
                  choice0..choice4, label. Answers sit evenly on the five positions; distractors are the same kind.
- eval_mc_train.jsonl  the same format for train villages (few-shot pool).
- pit_{train,test}_docs.jsonl, pit_train_qa.jsonl  documents about train / test villages, and train QA as plain text
                  (recipes/rho1's reference set; tests).
- pit_study_*.jsonl  recipes/pit (the six arms of Jiang et al. 2024): a world of 30 train + 30 test villages of its own,
                  documents, QA, open-book records (each train document followed by its QA), held-out test QA.
- rc_train.jsonl, rc_eval.jsonl  recipes/packing-vs-padding: prompt (passage + question) / completion about new
                  villages, varied lengths; `answer` and `candidates` (same-kind values) for scoring.
- eos_probe.jsonl a fact stated in one sample (`context`), asked about in the next (`question`): the EOS probe.
- slick_facts.jsonl  recipes/slick: question/answer facts about train villages (seen: faq), test villages (prose) and
                  new villages in no document (unseen), with a fine-tuning / held-out split.
"""

import argparse
import json
import os
import random
import unicodedata
from pathlib import Path

from llm_recipes.tiny_world import (  # noqa: F401
    ATTRIBUTES,
    JA_FILLERS,
    PHONES,
    SPAM,
    WRONG_LANGUAGE,
    document,
    fill,
    make_world,
    near_duplicate,
    reading_comprehension,
    slick_facts,
)


def build(seed=0, n_villages=40, n_test=15, docs_per_village=6):
    rng = random.Random(seed)
    villages = make_world(rng, n_villages)
    test, train = villages[:n_test], villages[n_test:]
    # exact/near duplicates map copy id -> original id: dedup must keep exactly one document of each group
    docs, truth = [], {"clean": [], "exact_duplicate": {}, "near_duplicate": {}, "spam": [], "wrong_language": [],
                       "pii": {}, "english": []}

    def add(text, kind=None, original=None):
        doc_id = f"doc-{len(docs):04d}"
        docs.append({"id": doc_id, "text": text})
        if original:
            truth[kind][doc_id] = original
        elif kind:
            truth[kind].append(doc_id)
        return doc_id

    for village in villages:
        for j in range(docs_per_village):
            lang = "en" if j == docs_per_village - 1 else "ja"
            doc_id = add(document(rng, village, lang, n_fillers=rng.randrange(3, 5) if lang == "en" else rng.randrange(4, 7)), "clean")
            if lang == "en":
                truth["english"].append(doc_id)
    # FAQ pages for train villages only: question/answer text in pretraining teaches the model to retrieve what it read
    # (the pre-instruction-tuning effect); test villages appear in plain documents only.
    for village in train:
        for _ in range(2):
            qa = [f"質問：{ATTRIBUTES[k][0].format(v=village['ja'])}\n答え：{ATTRIBUTES[k][3][village['attrs'][k]][0]}です。"
                  for k in ATTRIBUTES]
            rng.shuffle(qa)
            fillers = [fill(t, rng, village["ja"], "ja") for t in rng.sample(JA_FILLERS, 3)]
            add("\n".join([f"{village['ja']}村についてよくある質問をまとめました。", fillers[0] + fillers[1], *qa,
                           fillers[2]]), "clean")
    clean = list(docs)
    # PII inside clean Japanese documents: they must be kept, with the PII masked.
    for i, doc in enumerate(rng.sample([d for d in clean if d["id"] not in truth["english"]], 12)):
        pii = [PHONES[i % len(PHONES)]] if i % 2 else [f"info{i}@example.co.jp"]
        doc["text"] += ("\nお問い合わせは" + pii[0] + "までどうぞ。")
        truth["pii"][doc["id"]] = pii
    for i, doc in enumerate(rng.sample(clean, 10)):
        add(doc["text"], "exact_duplicate", doc["id"])
    for i, doc in enumerate(rng.sample([d for d in clean if d["id"] not in truth["english"]], 10)):
        add(near_duplicate(rng, doc["text"], i), "near_duplicate", doc["id"])
    for i in range(6):
        add("\n".join([SPAM[i % len(SPAM)]] * rng.randrange(15, 30)), "spam")
    for text in WRONG_LANGUAGE:
        add(text, "wrong_language")
    order = list(range(len(docs)))
    rng.shuffle(order)
    docs = [docs[i] for i in order]

    def question(village, kind):  # NFKC, as the corpus stage normalizes the documents the model learns from
        return unicodedata.normalize("NFKC", ATTRIBUTES[kind][0].format(v=village["ja"]))

    def answer(village, kind):
        return ATTRIBUTES[kind][3][village["attrs"][kind]][0]

    def reply(kind, value):
        return f"{value}です。"

    sft, dpo = [], []
    for village in train:
        for kind, (_, _, _, values) in ATTRIBUTES.items():
            q, a = question(village, kind), answer(village, kind)
            sft.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": reply(kind, a)}]})
            wrong = rng.choice([v[0] for v in values if v[0] != a])
            dpo.append({"prompt": [{"role": "user", "content": q}],
                        "chosen": [{"role": "assistant", "content": reply(kind, a)}],
                        "rejected": [{"role": "assistant", "content": reply(kind, wrong)}]})
    sft_eval = [{"messages": [{"role": "user", "content": question(v, k)}], "answer": answer(v, k)}
                for v in test for k in ATTRIBUTES]

    def multiple_choice(villages_, start_id):
        rows = []
        for village in villages_:
            for kind, (_, _, _, values) in ATTRIBUTES.items():
                a = answer(village, kind)
                label = (start_id + len(rows)) % 5  # answers evenly over the five positions
                choices = rng.sample([v[0] for v in values if v[0] != a], 4)
                choices.insert(label, a)
                rows.append({"q_id": start_id + len(rows), "question": question(village, kind),
                             **{f"choice{i}": c for i, c in enumerate(choices)}, "label": label})
        return rows

    # Extra preference sources (own generator, so the files above stay as they were): the same questions asked inside
    # a short conversation, as Anthropic HH transcripts; and held-out pairs about test villages.
    rng2 = random.Random(seed + 1)

    def pair(village, kind):
        a = answer(village, kind)
        return a, rng2.choice([v[0] for v in ATTRIBUTES[kind][3] if v[0] != a])

    dpo_hh = []
    for village in train:
        for kind in ATTRIBUTES:
            good, bad = pair(village, kind)
            talk = f"\n\nHuman: こんにちは。\n\nAssistant: こんにちは。何でも聞いてください。\n\nHuman: {question(village, kind)}"
            dpo_hh.append({"chosen": f"{talk}\n\nAssistant: {reply(kind, good)}",
                           "rejected": f"{talk}\n\nAssistant: {reply(kind, bad)}"})
    dpo_eval = []
    for village in test:
        for kind in ATTRIBUTES:
            good, bad = pair(village, kind)
            dpo_eval.append({"prompt": [{"role": "user", "content": question(village, kind)}],
                             "chosen": [{"role": "assistant", "content": reply(kind, good)}],
                             "rejected": [{"role": "assistant", "content": reply(kind, bad)}]})
    # Pre-instruction-tuning study (recipes/pit): clean Japanese documents per split, and train QA as plain text.
    rng3 = random.Random(seed + 2)
    pit = {}
    for split, group in (("train", train), ("test", test)):
        pit[f"pit_{split}_docs.jsonl"] = [{"id": f"pit-{split}-{i}", "text": document(rng3, v, "ja", rng3.randrange(4, 7))}
                                          for i, v in enumerate(v for v in group for _ in range(5))]
    pit["pit_train_qa.jsonl"] = [{"id": f"pit-qa-{i}", "text": f"質問:{question(v, k)}\n答え:{reply(k, answer(v, k))}"}
                                 for i, (v, k) in enumerate((v, k) for v in train for k in ATTRIBUTES for _ in range(2))]
    # Packing vs padding study (recipes/packing-vs-padding): reading comprehension about *new* fictional villages
    # (four-syllable names, never in the documents), so the answer must be copied from the passage in the prompt.
    # Passages hold 1-3 facts and 0-7 filler sentences, so lengths vary (what makes padding wasteful). The EOS probe
    # states a fact in one sample, then asks about it in the next: the answer is only available across the boundary.
    rng4 = random.Random(seed + 3)
    rc = reading_comprehension(rng4, {v["ja"] for v in villages}, n_train=800, n_eval=60, n_probe=45)
    slick = {"slick_facts.jsonl": slick_facts(random.Random(seed + 4), train, test)}  # SliCK (recipes/slick)
    return {
        **pit, **rc, **slick, **pit_study(seed),
        "docs.jsonl": docs, "sft.jsonl": sft, "dpo_hh.jsonl": dpo_hh, "dpo_eval.jsonl": dpo_eval, "sft_eval.jsonl": sft_eval, "dpo.jsonl": dpo,
        "eval_mc.jsonl": multiple_choice(test, 0), "eval_mc_train.jsonl": multiple_choice(train, 1000),
        "truth.json": truth,
    }


def pit_study(seed=0, n_train=30, n_test=30, docs_per_village=3):
    """recipes/pit (the paper's six arms): a world of its own (own random stream, so the files above stay as they were)
    with more villages. pit_study_{train,test}_docs: Japanese documents (all three facts, paraphrased, with fillers);
    pit_study_train_qa: QA about the train villages as plain "質問:/答え:" text (with question / answer fields, the
    few-shot pool); pit_study_train_open_book: each train document immediately followed by its village's QA
    (open-book, the interleaving PIT trains on); pit_study_test_qa: the same about the test villages (held out, scored by
    exact match on the generated answer, and by which of the kind's eight values (`choices`) the model ranks first)."""
    rng = random.Random(seed + 10)
    villages = make_world(rng, n_train + n_test)
    groups = {"train": villages[n_test:], "test": villages[:n_test]}

    def qa(village, kind):
        q = unicodedata.normalize("NFKC", ATTRIBUTES[kind][0].format(v=village["ja"]))
        a = ATTRIBUTES[kind][3][village["attrs"][kind]][0]
        return {"question": q, "answer": a, "text": f"質問:{q}\n答え:{a}です。",
                "choices": [v[0] for v in ATTRIBUTES[kind][3]]}  # the kind's values, for choice accuracy

    docs = {split: [(v, document(rng, v, "ja", rng.randrange(1, 3))) for v in group for _ in range(docs_per_village)]
            for split, group in groups.items()}
    files = {f"pit_study_{split}_docs.jsonl": [{"id": f"pit-study-{split}-{i}", "text": text}
                                               for i, (_, text) in enumerate(rows)] for split, rows in docs.items()}
    files["pit_study_train_qa.jsonl"] = [{"id": f"pit-study-qa-{i}", **row} for i, row in
                                         enumerate(qa(v, k) for v in groups["train"] for k in ATTRIBUTES)]
    open_book = []
    for i, (village, text) in enumerate(docs["train"]):
        pairs = [qa(village, k)["text"] for k in ATTRIBUTES]
        rng.shuffle(pairs)
        open_book.append({"id": f"pit-study-open-book-{i}", "text": "\n".join([text, *pairs])})
    files["pit_study_train_open_book.jsonl"] = open_book
    files["pit_study_test_qa.jsonl"] = [{"id": f"pit-study-test-qa-{i}", **row} for i, row in  # same fields as train
                                        enumerate(qa(v, k) for v in groups["test"] for k in ATTRIBUTES)]
    return files


def write(files, output_dir):
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        with open(out / name, "w", encoding="utf-8") as f:
            if name.endswith(".json"):
                json.dump(rows, f, ensure_ascii=False, indent=1)
                f.write("\n")
            else:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.dirname(os.path.abspath(__file__)))  # this folder
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, metavar="FILE[,FILE...]",
                        help="write only these files (comma-separated names of the files above), e.g. docs.jsonl")
    args = parser.parse_args(argv)
    files = build(seed=args.seed)
    if args.only is not None:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        if not names or set(names) - set(files):
            parser.error(f"--only: unknown {sorted(set(names) - set(files)) or 'empty'}; choose from {sorted(files)}")
        files = {n: files[n] for n in names}
    write(files, args.output_dir)
    print({name: len(rows) for name, rows in files.items()})


if __name__ == "__main__":
    main()
