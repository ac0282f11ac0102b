"""Helpers the task YAMLs call with !function (lm-eval loads this file from the include path)."""

import collections
import unicodedata


def process_jsquad(dataset):
    """Flatten SQuAD-style articles into one row per answerable question."""
    import datasets

    rows = []
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa.get("is_impossible"):
                    continue
                rows.append({"id": str(qa["id"]), "title": article.get("title", ""), "context": paragraph["context"],
                             "question": qa["question"], "answers": [a["text"] for a in qa["answers"]]})
    return datasets.Dataset.from_list(rows)


def normalize(text):
    return "".join(unicodedata.normalize("NFKC", text).split()).strip("。、.,")


def char_f1(prediction, gold):
    pred, ref = list(normalize(prediction)), list(normalize(gold))
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if not pred or not ref or common == 0:
        return float(pred == ref)
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def qa_scores(doc, results):
    prediction = results[0].strip()
    golds = doc["answers"]
    return {"exact_match": float(any(normalize(prediction) == normalize(g) for g in golds)),
            "char_f1": max(char_f1(prediction, g) for g in golds)}
