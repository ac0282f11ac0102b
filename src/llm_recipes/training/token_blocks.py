"""Pretraining data: documents tokenized, joined with EOS and cut into fixed blocks (cached), and a data stage's
mixture of sources split into train / held-out blocks per source."""

import os

from llm_recipes.data import iter_texts, load_records
from llm_recipes.errors import RecipeError


def pack(dataset, tokenizer, text_key, block_size):
    """Tokenize, append EOS to every document, concatenate and cut into blocks of block_size (remainder dropped).
    The result is cached as Arrow next to the dataset's own cache, named by the data's fingerprint, the tokenizer's
    contents and the block size, so every run (and sweep point) on the same data and tokenizer tokenizes once."""
    import hashlib

    def tokenize(batch):
        return {"input_ids": [ids + [tokenizer.eos_token_id] for ids in
                              tokenizer(batch[text_key], add_special_tokens=False)["input_ids"]]}

    def group(batch):
        flat = [t for ids in batch["input_ids"] for t in ids]
        n = len(flat) // block_size * block_size
        blocks = [flat[i:i + block_size] for i in range(0, n, block_size)]
        return {"input_ids": blocks, "labels": [list(b) for b in blocks]}

    key = hashlib.sha256(f"{dataset._fingerprint}|{tokenizer.backend_tokenizer.to_str()}|{tokenizer.eos_token_id}|"
                         f"{text_key}".encode()).hexdigest()[:16]
    cache = os.path.dirname(dataset.cache_files[0]["filename"]) if dataset.cache_files else None
    names = [os.path.join(cache, f"pretrain-{key}-{part}.arrow") if cache else None
             for part in ("tokenized", f"blocks{block_size}")]
    tokenized = dataset.map(tokenize, batched=True, remove_columns=dataset.column_names, desc="tokenize",
                            cache_file_name=names[0])
    return tokenized.map(group, batched=True, batch_size=1000, desc=f"pack into blocks of {block_size}",
                         cache_file_name=names[1])


def stage_blocks(args, stage, tokenizer, block_size, training_args):
    """A stage's packed blocks as (train, held-out): one dataset split once, or several packed apart, each split into
    train and held-out blocks first (a repeated source must not leak into evaluation), the train parts interleaved by
    weight (datasets' `interleave_datasets`, sampling until every source has been seen once) and the held-out parts
    concatenated."""
    from datasets import concatenate_datasets, interleave_datasets

    sources = stage.get("datasets") or [{"path": stage["dataset_name"]}]
    train, held_out = [], []
    for source in sources:
        text_key = source.get("text_key", args.text_key)
        raw = load_records(source["path"], source.get("split", args.dataset_split), text_keys=[text_key],
                           config_name=source.get("config", args.dataset_config))
        with training_args.main_process_first(desc="tokenize and pack"):
            blocks = pack(raw, tokenizer, text_key, block_size)
        if len(blocks) < 2:
            raise RecipeError(f"{source['path']}: gives {len(blocks)} block(s) of {block_size} tokens")
        split = blocks.train_test_split(test_size=max(1, int(len(blocks) * args.validation_fraction)),
                                        seed=training_args.seed)
        train.append(split["train"])
        held_out.append(split["test"])
    if len(sources) == 1:
        return train[0], held_out[0]
    weights = [s.get("weight", 1.0) for s in sources]
    mixed = interleave_datasets(train, probabilities=[w / sum(weights) for w in weights], seed=training_args.seed,
                                stopping_strategy="all_exhausted")
    print("stage mixture: " + ", ".join(f"{s['path']} (weight {w}, {len(t)} train blocks)"
                                        for s, w, t in zip(sources, weights, train)) + f" -> {len(mixed)} blocks")
    return mixed, concatenate_datasets(held_out)


def characters_per_token(args, stage, tokenizer, sample=2000):
    """Characters per training token of a stage's data stream (EOS counted as a token): per source from its first
    `sample` documents, mixed by weight as the interleaved blocks are. Turns tokens seen into characters seen, the
    unit in which runs with different tokenizers read the same amount of text."""
    sources = stage.get("datasets") or [{"path": stage["dataset_name"]}]
    mixed = 0.0
    for source in sources:
        texts = list(iter_texts(source["path"], source.get("text_key", args.text_key), sample,
                                source.get("config", args.dataset_config)))
        tokens = sum(len(ids) + 1 for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
        mixed += source.get("weight", 1.0) * sum(map(len, texts)) / max(tokens, 1)
    return mixed / sum(source.get("weight", 1.0) for source in sources)
