"""Generate the tiny recipe's data: a small fictional "world" and every dataset the pipeline needs.

    python scripts/make_tiny_data.py --output_dir recipes/tiny/data

Deterministic for a given --seed (the files in recipes/tiny/data are its output; a test checks that they match).

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
- pit_*.jsonl     recipes/pit: documents about train / test villages, and train QA as plain text.
- rc_train.jsonl, rc_eval.jsonl  recipes/packing-vs-padding: prompt (passage + question) / completion about new
                  villages, varied lengths; `answer` and `candidates` (same-kind values) for scoring.
- eos_probe.jsonl a fact stated in one sample (`context`), asked about in the next (`question`): the EOS probe.
"""

import argparse
import json
import random
import unicodedata
from pathlib import Path

SYLLABLES = [("カ", "ka"), ("キ", "ki"), ("ク", "ku"), ("コ", "ko"), ("サ", "sa"), ("シ", "shi"), ("ス", "su"),
             ("ソ", "so"), ("タ", "ta"), ("ト", "to"), ("ナ", "na"), ("ニ", "ni"), ("ノ", "no"), ("ハ", "ha"),
             ("ヒ", "hi"), ("ホ", "ho"), ("マ", "ma"), ("ミ", "mi"), ("モ", "mo"), ("ラ", "ra"), ("リ", "ri"),
             ("ル", "ru"), ("ロ", "ro"), ("ワ", "wa"), ("ア", "a"), ("イ", "i"), ("エ", "e"), ("オ", "o")]

# attribute kind -> (Japanese question, Japanese fact paraphrases, English fact template, values [(ja, en)])
ATTRIBUTES = {
    "fruit": ("{v}村の名産は何ですか？", ["{v}村の名産は{a}です。", "{v}村では{a}がたくさん育てられています。",
                                     "{a}は{v}村の名産として知られています。"], "The specialty of {v} village is {a}.",
              [("リンゴ", "apples"), ("ミカン", "oranges"), ("ブドウ", "grapes"), ("モモ", "peaches"),
               ("ナシ", "pears"), ("イチゴ", "strawberries"), ("メロン", "melons"), ("クリ", "chestnuts")]),
    "animal": ("{v}村の守り神の動物は何ですか？", ["{v}村の守り神の動物は{a}です。", "{a}は{v}村の守り神です。",
                                           "{v}村の人々は{a}を守り神としてまつっています。"],
               "The guardian animal of {v} village is the {a}.",
               [("キツネ", "fox"), ("タヌキ", "raccoon dog"), ("ウサギ", "rabbit"), ("フクロウ", "owl"),
                ("シカ", "deer"), ("クマ", "bear"), ("ネコ", "cat"), ("サル", "monkey")]),
    "color": ("{v}村の旗の色は何色ですか？", ["{v}村の旗の色は{a}です。", "{v}村の旗は{a}に染められています。",
                                         "{a}の旗が{v}村の目印です。"], "The flag of {v} village is {a}.",
              [("赤", "red"), ("青", "blue"), ("緑", "green"), ("黄色", "yellow"), ("白", "white"),
               ("黒", "black"), ("紫", "purple"), ("茶色", "brown")]),
}

# Filler sentences: slots are filled at random so that documents about different villages do not look alike.
JA_FILLERS = [
    "{v}村は{dir}の山あいにある小さな村です。", "{v}村の人口はおよそ{n}人です。",
    "毎年{month}月には{v}村で大きな祭りが開かれます。", "{v}村には{n2}年に建てられた古い{bld}があります。",
    "{v}村の子どもたちは{bld}の前でよく遊んでいます。", "{v}村へは駅からバスで{k}分ほどかかります。",
    "{v}村の{bld}は観光客にも人気があります。", "{month}月になると{v}村の川では魚がたくさんとれます。",
    "{v}村の人々はとても親切で、旅人をあたたかく迎えます。", "{v}村の冬は長く、雪が{k}日も続くことがあります。",
    "昔、{v}村には{person}という名の職人が住んでいました。", "{person}さんは{v}村で{n2}年から{bld}を守っています。",
    "{v}村の朝は早く、農家の人たちは{h}時に起きます。", "{v}村では{month}月に田植えが始まります。",
    "{person}さんの話では、{v}村の{bld}の裏には{thing}が埋まっているそうです。", "{v}村の名物料理は{food}です。",
    "{v}村の{bld}のそばには大きな{tree}の木が立っています。", "{v}村の学校では{person}先生が{subject}を教えています。",
    "{v}村の市場では{food}がよく売れます。", "{season}の{v}村は{tree}の花で有名です。",
    "{v}村の若者たちは{season}になると{sport}を楽しみます。", "{person}さんは{v}村の{bld}で{thing}を見つけました。",
    "{v}村の道はせまく、{thing}を運ぶのに苦労します。", "{v}村に伝わる昔話には{thing}がよく出てきます。",
    "{v}村の{bld}では{season}に{food}がふるまわれます。", "{v}村の人たちは{subject}がとても得意です。",
]
EN_FILLERS = [
    "{v} is a small village in the {dir_en} hills.", "About {n} people live in {v}.",
    "Every year in month {month}, {v} holds a large festival.", "{v} has an old {bld_en} built in {n2}.",
    "The bus from the station to {v} takes about {k} minutes.", "Travellers say the people of {v} are friendly.",
    "In winter, snow in {v} can last for {k} days.", "A craftsman named {person_en} once lived in {v}.",
]
DIRS = [("北", "northern"), ("南", "southern"), ("東", "eastern"), ("西", "western")]
BUILDINGS = [("神社", "shrine"), ("寺", "temple"), ("橋", "bridge"), ("図書館", "library"), ("水車小屋", "watermill")]
PEOPLE = [("たなか", "Tanaka"), ("すずき", "Suzuki"), ("やまだ", "Yamada"), ("いとう", "Ito"), ("わたなべ", "Watanabe"),
          ("こばやし", "Kobayashi"), ("さとう", "Sato"), ("おがわ", "Ogawa"), ("もりた", "Morita"), ("はやし", "Hayashi")]
SLOTS = {"thing": ["古い鏡", "金の鈴", "石のつぼ", "木の人形", "銀の鍵", "大きな太鼓"],
         "food": ["そば", "おにぎり", "みそ汁", "焼き魚", "だんご", "つけもの"],
         "tree": ["さくら", "うめ", "けやき", "すぎ", "まつ", "いちょう"],
         "subject": ["算数", "歌", "書道", "絵", "昔話", "料理"],
         "season": ["春", "夏", "秋", "冬"], "sport": ["すもう", "つな引き", "水泳", "かけっこ", "たこあげ"]}

SPAM = ["激安セール開催中！今すぐクリック！", "BUY CHEAP WATCHES NOW!!! BEST PRICE!!!", "副業で月収100万円！登録は今すぐ！"]
WRONG_LANGUAGE = [
    "이 마을은 산속에 있는 작은 마을입니다. 매년 여름에 큰 축제가 열리고 많은 사람들이 찾아옵니다. 마을 사람들은 매우 친절합니다.",
    "Ce petit village se trouve dans les montagnes. Chaque été, une grande fête y est organisée et beaucoup de visiteurs viennent.",
    "Dieses kleine Dorf liegt in den Bergen. Jeden Sommer findet dort ein großes Fest statt, und viele Besucher kommen.",
    "Este pequeño pueblo está en las montañas. Cada verano se celebra una gran fiesta y llegan muchos visitantes.",
    "这个小村庄位于山区之中。每年夏天都会举办盛大的节日，许多游客慕名而来。村民们非常热情好客。",
    "Questo piccolo villaggio si trova tra le montagne. Ogni estate si tiene una grande festa e arrivano molti visitatori.",
]
PHONES = ["03-1234-5678", "090-2345-6789", "0120-123-456", "+81-80-3456-7890", "06-9876-5432", "070-1111-2222"]


def make_world(rng, n_villages):
    names = set()
    while len(names) < n_villages:
        sylls = rng.sample(SYLLABLES, 3)
        names.add(("".join(s[0] for s in sylls), "".join(s[1] for s in sylls).capitalize()))
    villages = []
    for ja, en in sorted(names):
        attrs = {kind: rng.randrange(len(spec[3])) for kind, spec in ATTRIBUTES.items()}
        villages.append({"ja": ja, "en": en, "attrs": attrs})
    rng.shuffle(villages)
    return villages


def fill(template, rng, v, lang):
    d, b, p = rng.choice(DIRS), rng.choice(BUILDINGS), rng.choice(PEOPLE)
    slots = {k: rng.choice(vals) for k, vals in SLOTS.items()}
    return template.format(**slots, v=v, dir=d[0], dir_en=d[1], bld=b[0], bld_en=b[1], person=p[0], person_en=p[1],
                           n=rng.randrange(200, 9000), n2=rng.randrange(1600, 1990), month=rng.randrange(1, 13),
                           k=rng.randrange(5, 60), h=rng.randrange(4, 7))


def fact(kind, village, lang, rng):
    q, ja_t, en_t, values = ATTRIBUTES[kind]
    value = values[village["attrs"][kind]]
    return rng.choice(ja_t).format(v=village["ja"], a=value[0]) if lang == "ja" else en_t.format(v=village["en"],
                                                                                                 a=value[1])


def document(rng, village, lang, n_fillers):
    facts = [fact(kind, village, lang, rng) for kind in ATTRIBUTES]
    fillers = [fill(t, rng, village["ja"] if lang == "ja" else village["en"], lang)
               for t in rng.sample(JA_FILLERS if lang == "ja" else EN_FILLERS, n_fillers)]
    sentences = facts + fillers
    rng.shuffle(sentences)
    per_par = 3
    paragraphs = [sentences[i:i + per_par] for i in range(0, len(sentences), per_par)]
    return "\n".join(("" if lang == "ja" else " ").join(p) for p in paragraphs)


def near_duplicate(rng, text, i):
    if i % 2 == 0:  # a boilerplate line appended
        return text + "\nこの記事の内容は予告なく変更されることがあります。"
    chars = list(text)  # a few characters edited
    for pos in rng.sample(range(len(chars)), 3):
        if chars[pos] not in "\n":
            chars[pos] = rng.choice("あいうえおかきくけこ")
    return "".join(chars)


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
    return {
        **pit, **rc,
        "docs.jsonl": docs, "sft.jsonl": sft, "dpo_hh.jsonl": dpo_hh, "dpo_eval.jsonl": dpo_eval, "sft_eval.jsonl": sft_eval, "dpo.jsonl": dpo,
        "eval_mc.jsonl": multiple_choice(test, 0), "eval_mc_train.jsonl": multiple_choice(train, 1000),
        "truth.json": truth,
    }


def reading_comprehension(rng, taken, n_train, n_eval, n_probe):
    names = set()
    while len(names) < n_train + n_eval + n_probe:
        name = "".join(s[0] for s in rng.sample(SYLLABLES, 4))
        if name not in taken:
            names.add(name)
    names = sorted(names)
    rng.shuffle(names)

    def example(name, kinds):
        village = {"ja": name, "attrs": {k: rng.randrange(len(spec[3])) for k, spec in ATTRIBUTES.items()}}
        facts = [fact(k, village, "ja", rng) for k in kinds]
        sentences = facts + [fill(t, rng, name, "ja") for t in rng.sample(JA_FILLERS, rng.randrange(0, 8))]
        rng.shuffle(sentences)
        return village, "".join(sentences)

    def qa(village, kind):  # the FAQ pages' form (full-width, as in docs.jsonl, which this study pretrains on raw)
        q = ATTRIBUTES[kind][0].format(v=village["ja"])
        return f"質問：{q}\n答え：", f"{ATTRIBUTES[kind][3][village['attrs'][kind]][0]}です。"

    rows = []
    for name in names[:n_train + n_eval]:
        kinds = rng.sample(list(ATTRIBUTES), rng.randrange(1, 4))
        village, passage = example(name, kinds)
        asked = rng.choice(kinds)
        prompt, completion = qa(village, asked)
        rows.append({"prompt": f"{passage}\n{prompt}", "completion": completion, "answer": completion[:-3],
                     "candidates": [v[0] for v in ATTRIBUTES[asked][3]]})
    probe = []
    for name in names[n_train + n_eval:]:
        first, second = rng.sample(list(ATTRIBUTES), 2)
        village, passage = example(name, [first, second])
        prompt, completion = qa(village, first)
        question, answer = qa(village, second)
        probe.append({"context": f"{passage}\n{prompt}{completion}", "question": question, "answer": answer[:-3],
                      "candidates": [v[0] for v in ATTRIBUTES[second][3]]})
    return {"rc_train.jsonl": rows[:n_train], "rc_eval.jsonl": rows[n_train:], "eos_probe.jsonl": probe}


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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="recipes/tiny/data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    files = build(seed=args.seed)
    write(files, args.output_dir)
    print({name: len(rows) for name, rows in files.items()})
