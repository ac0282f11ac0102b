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


# llm-jp-eval's categories (the *_llmjp tasks)

def _nfkc(text):
    return unicodedata.normalize("NFKC", text).strip()


def llmjp_qa(doc, results):
    """Exact match and character F1 as llm-jp-eval scores QA: NFKC-normalised response (its first paragraph) against
    each gold answer; char F1 = rapidfuzz's token_sort_ratio / 100. Best over the gold answers."""
    from rapidfuzz import fuzz

    prediction = _nfkc(results[0].split("\n\n")[0])
    golds = [_nfkc(g) for g in doc["answers"]]
    return {"exact_match": float(any(prediction == g for g in golds)),
            "char_f1": max(fuzz.token_sort_ratio(prediction, g) / 100 for g in golds)}


def final_number(text):
    """The last number in a response (commas removed), as an int when it is whole, else None."""
    import re

    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", unicodedata.normalize("NFKC", text))
    if not numbers:
        return None
    value = float(numbers[-1].replace(",", ""))
    return int(value) if value.is_integer() else value


def final_number_match(doc, results):
    return {"exact_match": float(final_number(results[0]) == doc["answer_number"])}


def summary_pair(doc, results):
    """(reference, response) for ROUGE-2, computed over the corpus in the aggregation."""
    return {"rouge2": (doc["summary"], results[0].split("\n\n")[0].strip())}


def translation_pair(doc, results):
    """(reference, response) for corpus BLEU and chrF, computed in the aggregation."""
    pair = (doc["reference"], results[0].strip())
    return {"bleu": pair, "chrf": pair}


class _JaMecabWords:
    """rouge_score tokenizer: sacrebleu's Japanese MeCab tokenizer (ja-mecab, IPAdic), as llm-jp-eval's RougeJa."""

    def __init__(self):
        from sacrebleu.tokenizers.tokenizer_ja_mecab import TokenizerJaMecab

        self.tokenizer = TokenizerJaMecab()

    def tokenize(self, text):
        return self.tokenizer(text).split()


def rouge2_ja(items):
    from rouge_score.rouge_scorer import RougeScorer
    from rouge_score.scoring import BootstrapAggregator

    scorer = RougeScorer(["rouge2"], tokenizer=_JaMecabWords())
    aggregator = BootstrapAggregator()
    for reference, prediction in items:
        aggregator.add_scores(scorer.score(reference, prediction))
    return aggregator.aggregate()["rouge2"].mid.fmeasure


def _bleu(items, target_language):
    from sacrebleu.metrics import BLEU

    references, predictions = zip(*items)
    return BLEU(trg_lang=target_language).corpus_score(list(predictions), [list(references)]).score


def bleu_ja(items):
    return _bleu(items, "ja")


def bleu_en(items):
    return _bleu(items, "en")


def chrf(items):
    from sacrebleu.metrics import CHRF

    references, predictions = zip(*items)
    return CHRF().corpus_score(list(predictions), [list(references)]).score


def humaneval_pass(doc, results):
    """Run the completion with the problem's tests in the sandbox (llm_recipes.evaluation.code_eval); pass@1, n = 1."""
    from llm_recipes.evaluation.code_eval import humaneval_program, pass_at_k, run_sandboxed

    status, _ = run_sandboxed(humaneval_program(doc, results[0]))
    return {"pass@1": pass_at_k(1, int(status == "passed"), 1)}
