"""Readers for the official release formats of Japanese benchmarks. Each returns the rows lm-eval reads (a list of
dicts) and raises a RecipeError naming file and line for anything that does not fit the format.

Formats: JSON Lines (JGLUE v1.3, XL-Sum, JHumanEval, and the hub datasets' rows as `datasets` exports them),
SQuAD-style JSON (JSQuAD), a JSON array (JEMHopQA), headerless CSV (JMMLU, MMLU's layout), TSV (MGSM), XML (NIILC),
and WMT test sets as SGML (`<seg id=..>` lines) or plain text, one segment per line, source and reference apart."""

import csv
import json
import os
import re
import xml.parsers.expat

from llm_recipes.data import iter_jsonl
from llm_recipes.errors import RecipeError


def _read_text(path):
    if not os.path.isfile(path):
        raise RecipeError(f"file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise RecipeError(f"{path}:{line}: not valid UTF-8") from None


def _line(text, index):
    return text.count("\n", 0, index) + 1


def jsonl(path, required=(), checks=()):
    """JSON Lines; `checks` are (test(record) -> error message or None)."""
    rows = []
    for n, r in iter_jsonl(path, required_keys=required):
        for check in checks:
            message = check(r)
            if message:
                raise RecipeError(f"{path}:{n}: {message}")
        rows.append(r)
    if not rows:
        raise RecipeError(f"{path}: no examples")
    return rows


def json_array(path, required=()):
    """A JSON document holding a list of objects (JEMHopQA's train/dev files); errors name the line where the
    offending object starts."""
    text = _read_text(path)
    decoder = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if not text[i:i + 1] == "[":
        raise RecipeError(f"{path}:{_line(text, i)}: expected a JSON array of objects ([{{...}}, ...])")
    i += 1
    rows = []
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            raise RecipeError(f"{path}:{_line(text, i)}: the JSON array is not closed")
        if text[i] == "]":
            break
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise RecipeError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise RecipeError(f"{path}:{_line(text, i)}: expected a JSON object, got {type(obj).__name__}")
        for key in required:
            if key not in obj:
                raise RecipeError(f"{path}:{_line(text, i)}: record has no '{key}' field (fields: {', '.join(obj)})")
        rows.append(obj)
        i = end
    if not rows:
        raise RecipeError(f"{path}: no examples")
    return rows


def squad(path):
    """JSQuAD as JGLUE releases it ({"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}), flattened to
    the rows of the hub dataset (id, title, context, question, answers {text, answer_start}, is_impossible)."""
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecipeError(f"{path}:{e.lineno}: not a SQuAD-style JSON document ({e.msg} at column {e.colno})") \
            from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise RecipeError(f"{path}:1: not a SQuAD-style JSON document {{\"data\": [{{\"paragraphs\": [{{\"qas\": "
                          "...}]}]}")
    rows = []
    for article in doc["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                missing = [k for k in ("id", "question", "answers") if k not in qa]
                if missing or "context" not in paragraph or not qa.get("answers"):
                    where = text.find(json.dumps(str(qa.get("id", qa.get("question", ""))), ensure_ascii=False))
                    raise RecipeError(f"{path}:{_line(text, max(where, 0))}: question {qa.get('id')!r} needs id, "
                                      "question, a non-empty answers list and its paragraph's context")
                rows.append({"id": str(qa["id"]), "title": article.get("title", ""),
                             "context": paragraph["context"], "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a.get("answer_start", -1) for a in qa["answers"]]},
                             "is_impossible": bool(qa.get("is_impossible", False))})
    if not rows:
        raise RecipeError(f"{path}: no examples")
    return rows


def jmmlu_csv(path):
    """JMMLU subject files: CSV rows `question,A,B,C,D,answer` (MMLU's layout; a header row of exactly those names is
    skipped). Returns {question, A, B, C, D, answer, subject}."""
    text = _read_text(path)
    subject = os.path.splitext(os.path.basename(path))[0]
    rows = []
    reader = csv.reader(text.splitlines(keepends=True))
    for row in reader:
        n = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if [c.strip() for c in row] == ["question", "A", "B", "C", "D", "answer"]:
            continue
        if len(row) != 6:
            raise RecipeError(f"{path}:{n}: expected 6 columns (question,A,B,C,D,answer), got {len(row)}")
        if row[5].strip() not in ("A", "B", "C", "D"):
            raise RecipeError(f"{path}:{n}: answer {row[5]!r} is not one of A, B, C, D")
        rows.append({"question": row[0], "A": row[1], "B": row[2], "C": row[3], "D": row[4],
                     "answer": row[5].strip(), "subject": subject})
    if not rows:
        raise RecipeError(f"{path}: no examples")
    return rows


def mgsm_tsv(path):
    """MGSM's released `mgsm_<lang>.tsv`: question<TAB>answer_number, no header. Returns the hub dataset's rows
    (question, answer None, answer_number int, equation_solution None)."""
    rows = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise RecipeError(f"{path}:{n}: expected question<TAB>answer_number, got {len(parts)} field(s)")
        number = parts[1].strip().replace(",", "")
        if not re.fullmatch(r"-?\d+", number):
            raise RecipeError(f"{path}:{n}: answer_number {parts[1]!r} is not an integer")
        rows.append({"question": parts[0], "answer": None, "answer_number": int(number), "equation_solution": None})
    if not rows:
        raise RecipeError(f"{path}: no examples")
    return rows


def niilc_xml(path):
    """NIILC-ECQA2015 XML (<questions><question id=..><text>..</text><answers><answer>..</answer>...). Returns
    {qid, question, answers}; a question without text or answers is an error at its line."""
    text = _read_text(path)
    parser = xml.parsers.expat.ParserCreate()
    rows, stack, current = [], [], {}

    def start(name, attrs):
        nonlocal current
        stack.append(name)
        if name == "question" and stack[:-1] == ["questions"]:
            current = {"qid": attrs.get("id", ""), "question": None, "answers": [], "line": parser.CurrentLineNumber}
        elif name in ("text", "answer"):
            current["_buf"] = []

    def data(chunk):
        if "_buf" in current:
            current["_buf"].append(chunk)

    def end(name):
        stack.pop()
        if name == "text" and stack[-1:] == ["question"]:
            current["question"] = "".join(current.pop("_buf")).strip()
        elif name == "answer" and stack[-2:] == ["question", "answers"]:
            answer = "".join(current.pop("_buf")).strip()
            if answer:
                current["answers"].append(answer)
        elif name == "question" and not stack[1:]:
            if not current["question"] or not current["answers"]:
                raise RecipeError(f"{path}:{current['line']}: question {current['qid']!r} needs <text> and at least "
                                  "one <answer>")
            rows.append({k: v for k, v in current.items() if k != "line"})

    parser.StartElementHandler, parser.CharacterDataHandler, parser.EndElementHandler = start, data, end
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as e:
        raise RecipeError(f"{path}:{e.lineno}: not well-formed XML ({xml.parsers.expat.ErrorString(e.code)})") \
            from None
    if not rows:
        raise RecipeError(f"{path}: no <question> elements under <questions>")
    return rows


_SEG = re.compile(r"<seg\b[^>]*>(.*)</seg>\s*$", re.IGNORECASE)


def _segments(path):
    """Segments of a WMT SGML file (<seg id="N">text</seg>, one per line) or a plain-text file (one per line)."""
    lines = _read_text(path).splitlines()
    sgml = any(line.lstrip().lower().startswith(("<srcset", "<refset", "<doc")) for line in lines[:5])
    segments = []
    for n, line in enumerate(lines, start=1):
        if sgml:
            if "<seg" not in line.lower():
                continue
            m = _SEG.search(line.strip())
            if not m:
                raise RecipeError(f"{path}:{n}: a <seg> must open and close on one line: <seg id=\"N\">text</seg>")
            segments.append((n, _unescape(m.group(1))))
        else:
            if not line.strip():
                raise RecipeError(f"{path}:{n}: empty line in a one-segment-per-line file")
            segments.append((n, line))
    if not segments:
        raise RecipeError(f"{path}: no segments")
    return segments


def _unescape(text):
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'") \
        .replace("&amp;", "&")


def wmt_pair(source, reference):
    """A WMT test set: source and reference files (SGML or plain text) with the same number of segments."""
    src, ref = _segments(source), _segments(reference)
    if len(src) != len(ref):
        shorter, other = (source, ref) if len(src) < len(ref) else (reference, src)
        n = other[min(len(src), len(ref))][0]
        raise RecipeError(f"{shorter}: {min(len(src), len(ref))} segments, but its pair has more (first unpaired at "
                          f"line {n}); source and reference must align")
    return [{"source": s, "reference": r} for (_, s), (_, r) in zip(src, ref)]
