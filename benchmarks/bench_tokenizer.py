"""Benchmark: our tokenizer stage (tokenizers) against sentencepiece, same model type, vocabulary size and text.

    python benchmarks/bench_tokenizer.py [--docs 20000] [--vocab_size 4000]

Generates Japanese + English documents from the tiny world's sentence templates (90 % for training, 10 % held out),
trains byte-fallback BPE and Unigram with both libraries, and prints training time and held-out Japanese characters per
token. Prints figures; asserts nothing.
"""

import argparse
import json
import os
import random
import tempfile
import time

from llm_recipes import tiny_world
from llm_recipes.reporting.report import markdown_table
from llm_recipes.scripts import tokenizer as stage
from llm_recipes.tokenizer.metrics import language_of


def generate(n, seed=0):
    rng = random.Random(seed)
    villages = tiny_world.make_world(rng, 200)
    docs = []
    for _ in range(n):
        v = rng.choice(villages)
        lang = "en" if rng.random() < 0.2 else "ja"
        pool = tiny_world.JA_FILLERS if lang == "ja" else tiny_world.EN_FILLERS
        sep = "" if lang == "ja" else " "
        docs.append(sep.join(tiny_world.fill(t, rng, v[lang], lang) for t in rng.sample(pool, 6)))
    return docs


def ja_chars_per_token(encode, texts):
    ja = [t for t in texts if language_of(t) == "ja"]
    return sum(len(t) for t in ja) / sum(len(encode(t)) for t in ja)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--vocab_size", type=int, default=4000)
    args = parser.parse_args()
    import sentencepiece as spm

    docs = generate(args.docs)
    cut = int(len(docs) * 0.9)
    train_docs, held_out = docs[:cut], docs[cut:]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus_jsonl, corpus_txt = os.path.join(tmp, "train.jsonl"), os.path.join(tmp, "train.txt")
        with open(corpus_jsonl, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in train_docs)
        with open(corpus_txt, "w", encoding="utf-8") as f:
            f.writelines(d + "\n" for d in train_docs)
        for model in ("bpe", "unigram"):
            targs = stage.TokenizerArguments(input_path=corpus_jsonl, output_dir=tmp, model=model,
                                             vocab_size=args.vocab_size, split_scripts=False,
                                             max_token_length=16)  # sentencepiece's default piece limit
            start = time.time()
            tok = stage.train(targs, args.vocab_size)
            seconds = time.time() - start
            rows.append([f"tokenizers {model} (split_scripts off)", tok.get_vocab_size(), round(seconds, 2),
                         round(ja_chars_per_token(lambda t: tok.encode(t).ids, held_out), 3)])
            targs.split_scripts = True
            start = time.time()
            tok = stage.train(targs, args.vocab_size)
            seconds = time.time() - start
            rows.append([f"tokenizers {model} (split_scripts on, our default)", tok.get_vocab_size(),
                         round(seconds, 2), round(ja_chars_per_token(lambda t: tok.encode(t).ids, held_out), 3)])
            prefix = os.path.join(tmp, f"sp_{model}")
            start = time.time()
            spm.SentencePieceTrainer.train(input=corpus_txt, model_prefix=prefix, vocab_size=args.vocab_size,
                                           model_type=model, byte_fallback=True, character_coverage=0.9995,
                                           num_threads=os.cpu_count(), minloglevel=2)
            seconds = time.time() - start
            sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
            rows.append([f"sentencepiece {model}", sp.get_piece_size(), round(seconds, 2),
                         round(ja_chars_per_token(sp.encode, held_out), 3)])
    print(f"{len(train_docs)} training / {len(held_out)} held-out documents, target vocabulary {args.vocab_size}")
    print(markdown_table(["tokenizer", "vocab", "train seconds", "held-out ja chars/token"], rows))


if __name__ == "__main__":
    main()
