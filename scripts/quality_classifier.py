"""Quality classifier: a fastText model that tells text resembling a high-quality reference (Wikipedia, news) from web
text, as GPT-3, Llama, FineWeb-Edu and Swallow corpus v2 filter their crawls. The corpus stage applies it with
datatrove's FastTextClassifierFilter (`quality_classifier: {model, threshold}` in a corpus recipe).

    python scripts/quality_classifier.py --config recipes/quality-classifier/quality_classifier.yaml
    python scripts/quality_classifier.py --config recipes/quality-classifier-ja-web/quality_classifier.yaml --dry_run true

Sources are lists of {path (local file/folder/glob or hub dataset id), config, text_key, limit}; `generated_negatives`
adds web-like boilerplate / spam pages from the tiny world's generator. Each class is split into train and held-out
text. The text is prepared exactly as the corpus stage hands it to its fastText filter (ftfy, Unicode normalization,
newlines replaced), so training and filtering see the same strings. Japanese has no spaces, so a paragraph would be one
fastText "word": `tokenization: chars` makes each character a word (ASCII words stay whole) and `word_ngrams` character
n-grams; the corpus stage's filter applies the same split (the settings are saved in model.bin.json).
Writes output_dir/model.bin (+ .json), held_out.jsonl (text, label, score), report.json / report.md, pr_curve.png.
"""

import json
import multiprocessing
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from llm_recipes.config import check_choices, parse, run
from llm_recipes.corpus.steps import train_fasttext
from llm_recipes.data import iter_texts
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import clear_report, markdown_table, write_report

SOURCE_KEYS = {"path", "config", "text_key", "limit"}


@dataclass
class QualityClassifierArguments:
    output_dir: str
    positive: list[dict] = field(default_factory=list, metadata={"help": "[{path, config, text_key, limit}]: "
                                                                         "high-quality text"})
    negative: list[dict] = field(default_factory=list, metadata={"help": "[{path, config, text_key, limit}]: web text"})
    generated_negatives: int = field(default=0, metadata={"help": "web-like spam / boilerplate pages to generate"})
    label: str = field(default="hq", metadata={"help": "the positive label (negatives: lq); the corpus filter keeps it"})
    held_out_fraction: float = 0.2
    threshold: float = field(default=0.5, metadata={"help": "P(label) at which held-out precision / recall are given"})
    tokenization: str = field(default="chars", metadata={"help": "chars: characters as fastText words (Japanese has "
                                                                  "no spaces) | none: whitespace only"})
    newline_replacement: str = " "
    fix_encoding: bool = field(default=True, metadata={"help": "ftfy, as the corpus stage before its filters"})
    normalization: str = field(default="NFKC", metadata={"help": "as the corpus stage's `normalization`"})
    score_sources: list[dict] = field(default_factory=list, metadata={
        "help": "[{path, ...}]: other text to score (the share each would keep is reported)"})
    epoch: int = 20
    lr: float = 0.5
    dim: int = 32
    minn: int = field(default=0, metadata={"help": "character n-grams inside words (useful with tokenization none)"})
    maxn: int = 0
    word_ngrams: int = field(default=3, metadata={"help": "with chars: character 1..n-grams"})
    bucket: int = 50000
    seed: int = 0
    dry_run: bool = field(default=False, metadata={"help": "print the plan; read and train nothing"})


ARGUMENTS = (QualityClassifierArguments,)


def check_sources(sources, key):
    for i, source in enumerate(sources):
        if not isinstance(source, dict) or not source.get("path") or set(source) - SOURCE_KEYS:
            raise RecipeError(f"{key}[{i}]: expected {{path, and optionally config, text_key, limit}}; got {source}")


def read_texts(sources, generated, seed):
    from llm_recipes.tiny_world import web_noise

    texts = [(t, s["path"]) for s in sources for t in iter_texts(s["path"], s.get("text_key", "text"), s.get("limit"),
                                                                 s.get("config"))]
    rng = random.Random(seed)
    return texts + [(web_noise(rng), "generated web noise") for _ in range(generated)]


def preparer(args):
    """text -> the string the corpus stage's fastText filter scores: after the stage's ftfy and Unicode normalization (the
    same datatrove blocks), stripped and newlines replaced (as datatrove 0.10's filter does), character-tokenized
    (as LocalFastTextClassifierFilter does with `tokenization: chars`)."""
    from llm_recipes.corpus.steps import char_tokens, text_normalizers

    steps = text_normalizers(args.fix_encoding, args.normalization)

    def prepare(text):
        for step in steps:
            text = step.format(text)
        text = text.strip().replace("\n", args.newline_replacement)
        return char_tokens(text) if args.tokenization == "chars" else text

    return prepare


def split(items, fraction, rng):
    items = list(items)
    rng.shuffle(items)
    n = max(1, round(len(items) * fraction))
    return items[n:], items[:n]


def metrics_at(scores, labels, threshold):
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    predicted = [s >= threshold for s in scores]
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, average="binary", zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "roc_auc": float(roc_auc_score(labels, scores)) if len(set(labels)) == 2 else None}


def plot_pr(path, scores, labels, threshold):
    from sklearn.metrics import precision_recall_curve

    from llm_recipes.reporting.plots import subplots

    precision, recall, _ = precision_recall_curve(labels, scores)
    at = metrics_at(scores, labels, threshold)
    fig, ax = subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    ax.scatter([at["recall"]], [at["precision"]], color="red", zorder=3, label=f"threshold {threshold}")
    ax.set_xlabel("recall (high-quality kept)")
    ax.set_ylabel("precision")
    ax.set_title("quality classifier, held-out")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(args: QualityClassifierArguments):
    start = time.time()
    check_sources(args.positive, "positive")
    check_sources(args.negative, "negative")
    check_sources(args.score_sources, "score_sources")
    if not args.positive or not (args.negative or args.generated_negatives):
        raise RecipeError("positive and negative (or generated_negatives): both classes need text")
    if not 0 < args.held_out_fraction < 1:
        raise RecipeError(f"held_out_fraction: {args.held_out_fraction} must be in (0, 1)")
    check_choices(args, tokenization=("chars", "none"))
    hyper = {k: getattr(args, k) for k in ("tokenization", "epoch", "lr", "dim", "minn", "maxn", "word_ngrams",
                                           "bucket")}
    if args.dry_run:
        rows = [[f"__label__{args.label}", s["path"], s.get("config", "-"), s.get("limit", "all")] for s in args.positive]
        rows += [["__label__lq", s["path"], s.get("config", "-"), s.get("limit", "all")] for s in args.negative]
        rows += [["__label__lq", "generated web noise", "-", args.generated_negatives]] if args.generated_negatives else []
        print(markdown_table(["label", "source", "config", "documents"], rows))
        print(f"fastText supervised: {hyper}; held out {args.held_out_fraction:.0%} per class; model -> "
              f"{args.output_dir}/model.bin\ncorpus recipe: quality_classifier: {{model: {args.output_dir}/model.bin, "
              f"label: {args.label}, threshold: {args.threshold}}}")
        return None
    import fasttext

    clear_report(args.output_dir)
    os.makedirs(args.output_dir, exist_ok=True)
    rng = random.Random(args.seed)
    classes = {args.label: read_texts(args.positive, 0, args.seed),
               "lq": read_texts(args.negative, args.generated_negatives, args.seed)}
    prepare = preparer(args)
    train, held_out = [], []
    for label, items in classes.items():
        tr, ho = split([(label, t, src) for t, src in items if t.strip()], args.held_out_fraction, rng)
        train += tr
        held_out += ho
    rng.shuffle(train)
    train_file = os.path.join(args.output_dir, "train.txt")
    with open(train_file, "w", encoding="utf-8") as f:
        f.writelines(f"__label__{label} {prepare(text)}\n" for label, text, _ in train)
    t0 = time.time()
    params = dict(epoch=args.epoch, lr=args.lr, dim=args.dim, minn=args.minn, maxn=args.maxn, wordNgrams=args.word_ngrams,
                  bucket=args.bucket, thread=1, seed=args.seed, verbose=0)
    # fastText trains in a fresh process: in a process that already ran other work (torch training, an earlier
    # fastText run), this wheel (fasttext-numpy2-wheel 0.9.2) intermittently stops with "Encountered NaN" on the same
    # file and settings; a fresh process trains deterministically (byte-identical models, measured)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(train_fasttext, train_file, params, os.path.join(args.output_dir, "model.bin")).result()
    train_s = time.time() - t0
    model = fasttext.load_model(os.path.join(args.output_dir, "model.bin"))
    with open(os.path.join(args.output_dir, "model.bin.json"), "w", encoding="utf-8") as f:  # read by the corpus stage
        json.dump({"label": args.label, "tokenization": args.tokenization,
                   "newline_replacement": args.newline_replacement, "fix_encoding": args.fix_encoding,
                   "normalization": args.normalization}, f, indent=1)

    def score(text):
        labels, probs = model.predict(prepare(text), k=-1)
        return float(dict(zip(labels, probs)).get(f"__label__{args.label}", 0.0))

    scores = [score(text) for _, text, _ in held_out]
    truth = [label == args.label for label, _, _ in held_out]
    with open(os.path.join(args.output_dir, "held_out.jsonl"), "w", encoding="utf-8") as f:
        for i, ((label, text, src), s) in enumerate(zip(held_out, scores)):
            f.write(json.dumps({"id": f"held-out-{i}", "text": text, "label": label, "source": src, "score": s},
                               ensure_ascii=False) + "\n")
    at = metrics_at(scores, truth, args.threshold)
    others = {}
    for source in args.score_sources:
        other = [score(t) for t, _ in read_texts([source], 0, args.seed)]
        others[source["path"]] = {"documents": len(other),
                                  "kept_share": sum(s >= args.threshold for s in other) / max(len(other), 1)}
    plot_pr(os.path.join(args.output_dir, "pr_curve.png"), scores, truth, args.threshold)
    counts = {label: {"train": sum(t[0] == label for t in train), "held_out": sum(t[0] == label for t in held_out)}
              for label in classes}
    table = markdown_table(["label", "train", "held-out"], [[k, v["train"], v["held_out"]] for k, v in counts.items()])
    summary = (f"held-out at P({args.label}) >= {args.threshold}: precision {at['precision']:.3f}, recall "
               f"{at['recall']:.3f}, F1 {at['f1']:.3f}, ROC AUC {at['roc_auc']:.3f}; trained in {train_s:.1f}s")
    sweep = [[t, *(round(v, 3) for v in list(metrics_at(scores, truth, t).values())[:3])]
             for t in (0.1, 0.3, 0.5, 0.7, 0.9)]
    hardest = sorted(zip(scores, truth, held_out), key=lambda x: abs(x[0] - args.threshold))[:4]
    lines = [f"# Quality classifier ({args.output_dir}/model.bin)", "", table, "", summary, "",
             markdown_table(["threshold", "precision", "recall", "F1"], sweep), "",
             "Closest to the threshold:", *[f"- {s:.3f} ({'hq' if y else 'lq'}) {t[1][:100]}".replace("\n", " ")
                                        for s, y, t in hardest]]
    if others:
        lines += ["", markdown_table(["other text", "documents", f"share with P({args.label}) >= {args.threshold}"],
                                     [[k, v["documents"], f"{v['kept_share']:.1%}"] for k, v in others.items()])]
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[2:]))
    return write_report(args.output_dir, "quality_classifier", {
        "label": args.label, "threshold": args.threshold, "counts": counts, **at, "train_seconds": round(train_s, 2),
        "by_threshold": {str(row[0]): dict(zip(("precision", "recall", "f1"), row[1:])) for row in sweep},
        "scored_sources": others, "fasttext": hyper, "model": os.path.join(args.output_dir, "model.bin")}, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
