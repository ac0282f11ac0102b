"""Documents that reward reading the context (recipes/packing-vs-padding): people and their pets, with names drawn at
random from syllables (28^2 = 784 pet names, one token each with the recipe's tokenizer, assigned at random in every
text), each fact stated once and asked about later in the same text. Nothing can be memorised, so the only way to answer is to copy the name from the context. Used by
recipes/packing-vs-padding/make_data.py; deterministic given the random.Random passed in.

- `copy_document`: pretraining text: 1 to `max_facts` pet facts among tiny-world filler sentences, then a question with
  its answer for every fact;
- `sft_example`: the same as prompt (passage + one question) / completion (the name), for SFT and the held-out recall
  check (the precondition before SFT);
- `unanswerable_example`: a passage with no pet and a question about one, answered "わかりません。" (an optional share of
  the SFT data, `unanswerable_share`);
- `probe_item`: a complete sample (passage stating a fact, its question and answer), and the next sample's question
  about the same fact (and the passage alone, for a probe of the [EOS] token without a completed sample before it).
  Its answer is only in the previous sample: across [EOS] (packed) or inside the same text (no [EOS]).

recipes/packing-vs-padding uses one fact per text (`max_facts: 1`): a 2-layer base learns to copy it (in 400-2,100 steps by seed),
while with two facts per text it had not learned to bind a name to its person and pet within 2,400 steps (README).
"""

from llm_recipes.tiny_world import JA_FILLERS, PEOPLE, SYLLABLES, fill

PETS = ["猫", "犬", "鳥", "うさぎ", "金魚", "馬"]
FACTS = ["{p}さんの{k}の名前は{x}です。", "{p}さんは{k}を飼っています。その{k}の名前は{x}です。",
         "{p}さんの家には{x}という名前の{k}がいます。"]
QUESTION = "質問：{p}さんの{k}の名前は何ですか？\n答え："
ANSWER = "{x}です。"


def name(rng, syllables):
    return "".join(rng.choice(SYLLABLES)[0] for _ in range(syllables))


# Villages of the filler sentences: two random kanji, so a village (repeated in its fillers: copying practice) is
# never made of the katakana tokens the pet names are.
VILLAGE_KANJI = "山川森石松竹青北小大高西東南田野原花春秋星月林岡島沢谷宮"


def village(rng):
    return rng.choice(VILLAGE_KANJI) + rng.choice(VILLAGE_KANJI)


def pets(rng, n):
    """n facts (person, pet kind, pet name): distinct people and kinds, so every question has one answer. Pet names
    are two random syllables (784 names, one token each with the recipe's tokenizer); people are common surnames."""
    return [{"p": p[0], "k": k, "x": name(rng, 2)} for p, k in zip(rng.sample(PEOPLE, n), rng.sample(PETS, n))]


def passage(rng, facts, n_fillers):
    v = village(rng)
    sentences = [rng.choice(FACTS).format(**f) for f in facts]
    sentences += [fill(t, rng, v, "ja") for t in rng.sample(JA_FILLERS, n_fillers)]
    rng.shuffle(sentences)
    return "".join(sentences)


def copy_document(rng, max_facts=2):
    """A passage with 1 to max_facts pet facts and 0-3 fillers, then a question + answer for every fact, in random
    order."""
    facts = pets(rng, rng.randrange(1, max_facts + 1))
    text = passage(rng, facts, rng.randrange(0, 4))
    for f in rng.sample(facts, len(facts)):
        text += "\n" + QUESTION.format(**f) + ANSWER.format(**f)
    return {"text": text}


def roll_call(rng):
    """A list of 4-8 pet names, then the same list read again twice: the plainest text that rewards copying."""
    v, kind = village(rng), rng.choice(PETS)
    names = "、".join(name(rng, 2) for _ in range(rng.randrange(4, 9)))
    return {"text": f"{v}村の{kind}の名前：{names}。\nもう一度読みます：{names}。\nもう一度：{names}。"}


def sft_example(rng, max_facts=2):
    facts = pets(rng, rng.randrange(1, max_facts + 1))
    asked = rng.choice(facts)
    return {"prompt": passage(rng, facts, rng.randrange(0, 4)) + "\n" + QUESTION.format(**asked),
            "completion": ANSWER.format(**asked), "answer": asked["x"]}


UNANSWERABLE = "わかりません。"


def unanswerable_example(rng):
    """An SFT sample whose passage (1-3 fillers) states no pet: the question about someone's pet is answered
    "わかりません。" (real SFT data has questions whose answer is not in their context). In a packed row the names of
    earlier samples are then wrong answers, which a model that copies across [EOS] is penalised for."""
    fact = pets(rng, 1)[0]
    return {"prompt": passage(rng, [], rng.randrange(1, 4)) + "\n" + QUESTION.format(**fact),
            "completion": UNANSWERABLE, "answer": None}


def probe_item(rng):
    """A previous sample (a passage stating fact A, A's question and answer) and the next sample's question about A;
    `passage` is the previous sample's passage alone (the probe's bare-passage conditions)."""
    fact = pets(rng, 1)[0]
    text = passage(rng, [fact], rng.randrange(0, 3))
    context = text + "\n" + QUESTION.format(**fact) + ANSWER.format(**fact)
    return {"context": context, "question": QUESTION.format(**fact), "answer": fact["x"], "passage": text}
