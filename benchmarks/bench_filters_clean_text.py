"""Benchmark: the corpus filters' false-positive rate on clean Japanese text. Every paragraph of
data/jglue-v1.3/ja_wikipedia_paragraphs.jsonl (JSQuAD contexts: 1,159 encyclopedic paragraphs from 59 Wikipedia
articles, CC BY-SA 4.0) is text a Japanese web filter should keep; so is each article (its paragraphs joined).

    python benchmarks/bench_filters_clean_text.py [--config recipes/ja-web/corpus.yaml] [--out outputs/bench-clean]

Prints, for paragraphs and for articles, the share kept and a per-rule table of what was removed (with an example),
and writes the same to <out>/report.md. The README's table comes from this script.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAGRAPHS = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")


def write_inputs(folder):
    records = [json.loads(line) for line in open(PARAGRAPHS, encoding="utf-8")]
    articles = defaultdict(list)
    for r in records:
        articles[r["title"]].append(r["text"])
    paths = {"paragraphs": os.path.join(folder, "paragraphs.jsonl"), "articles": os.path.join(folder, "articles.jsonl")}
    with open(paths["paragraphs"], "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n" for r in records)
    with open(paths["articles"], "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": t, "text": "\n".join(p)}, ensure_ascii=False) + "\n" for t, p in articles.items())
    return paths


def run(config, input_path, output_dir):
    cmd = [sys.executable, os.path.join(REPO, "scripts", "corpus.py"), "--config", config, "--input_path", input_path,
           "--output_dir", output_dir]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    return json.load(open(os.path.join(output_dir, "report.json"), encoding="utf-8"))


def example(output_dir, rule):
    import glob

    for path in glob.glob(os.path.join(output_dir, "removed", rule, "*.jsonl")):
        for line in open(path, encoding="utf-8"):
            return json.loads(line)["text"][:60].replace("\n", " ")
    return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO, "recipes", "ja-web", "corpus.yaml"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="bench-clean-")
    os.makedirs(out, exist_ok=True)
    inputs = write_inputs(out)
    lines = [f"# Filters on clean Japanese text ({os.path.relpath(args.config, REPO)})", ""]
    for unit, path in inputs.items():
        report = run(args.config, path, os.path.join(out, unit))
        kept = report["kept"] / report["read"]
        lines += [f"## {unit}: kept {report['kept']} / {report['read']} = {kept:.1%}", "",
                  "| rule | removed | share | example |", "|---|---|---|---|"]
        for rule, n in sorted(report["removed"].items(), key=lambda kv: -kv[1]):
            if n:
                lines.append(f"| {rule} | {n} | {n / report['read']:.1%} | {example(os.path.join(out, unit), rule)} |")
        lines.append("")
    text = "\n".join(lines)
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(text)
    print(f"(outputs in {out})")


if __name__ == "__main__":
    main()
