"""Input checks and dataset loading: local JSONL/Parquet files and folders, or hub dataset ids (real-scale recipes)."""

import glob
import json
import os

from .cli import RecipeError

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


def expand_files(path, key="input_path"):
    """A file, a folder (its data files, recursively) or a glob -> sorted list of files; a clear error if none."""
    if any(ch in path for ch in "*?["):
        files = sorted(glob.glob(path, recursive=True))
    elif os.path.isdir(path):
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                       if name.endswith(DATA_SUFFIXES) and not name.startswith("."))
    elif os.path.isfile(path):
        files = [path]
    else:
        raise RecipeError(f"{key}: path not found: {path}")
    if not files:
        raise RecipeError(f"{key}: no data files ({', '.join(DATA_SUFFIXES)}) in {path}")
    return files


def is_local(path):
    return os.path.exists(path) or any(ch in path for ch in "*?[") or path.startswith((".", "/", "~"))


def iter_jsonl(path, required_keys=(), text_keys=()):
    """Yield (line_number, record); raise a RecipeError naming file and line for any bad line.

    required_keys must be present; text_keys must also hold a non-empty string."""
    opener = open
    if path.endswith(".gz"):
        import gzip

        opener = gzip.open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RecipeError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecipeError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise RecipeError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            for key in (*required_keys, *text_keys):
                if key not in record:
                    raise RecipeError(f"{path}:{lineno}: record has no '{key}' field (fields: {', '.join(record)})")
            for key in text_keys:
                if not isinstance(record[key], str) or not record[key].strip():
                    raise RecipeError(f"{path}:{lineno}: field '{key}' must be a non-empty string")
            yield lineno, record


def validate_files(files, required_keys=(), text_keys=()):
    """Check every JSONL file up front (Parquet files are checked for columns). Returns the number of records."""
    n = 0
    for path in files:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            columns = pq.read_schema(path).names
            for key in (*required_keys, *text_keys):
                if key not in columns:
                    raise RecipeError(f"{path}: no column '{key}' (columns: {', '.join(columns)})")
            n += pq.read_metadata(path).num_rows
        else:
            n += sum(1 for _ in iter_jsonl(path, required_keys, text_keys))
    if n == 0:
        raise RecipeError(f"{files[0] if len(files) == 1 else os.path.dirname(files[0])}: no records")
    return n


def load_records(dataset_name, split="train", required_keys=(), text_keys=(), key="dataset_name", config_name=None):
    """`dataset_name` is a local file/folder/glob (validated line by line) or a hub dataset id."""
    import datasets

    if is_local(dataset_name):
        files = expand_files(dataset_name, key)
        validate_files(files, required_keys, text_keys)
        builder = "parquet" if files[0].endswith(".parquet") else "json"
        return datasets.load_dataset(builder, data_files=files, split="train")
    ds = datasets.load_dataset(dataset_name, config_name, split=split)
    missing = [k for k in (*required_keys, *text_keys) if k not in ds.column_names]
    if missing:
        raise RecipeError(f"{dataset_name}: no column(s) {missing} (columns: {ds.column_names})")
    return ds


def iter_texts(path, text_key="text", limit=None, config_name=None):
    """Stream texts from local JSONL (validated line by line) / Parquet files, or a hub dataset (streaming)."""
    n = 0
    if is_local(path):
        for f in expand_files(path):
            if f.endswith(".parquet"):
                import pyarrow.parquet as pq

                for batch in pq.ParquetFile(f).iter_batches(columns=[text_key], batch_size=1000):
                    for text in batch.column(0).to_pylist():
                        if limit is not None and n >= limit:
                            return
                        n += 1
                        yield text
            else:
                for _, record in iter_jsonl(f, text_keys=[text_key]):
                    if limit is not None and n >= limit:
                        return
                    n += 1
                    yield record[text_key]
    else:
        import datasets

        for record in datasets.load_dataset(path, config_name, split="train", streaming=True):
            if limit is not None and n >= limit:
                return
            n += 1
            yield record[text_key]


def load_sources(dataset_name, split, mixture, convert, seed=0):
    """One dataset, or a mixture [{path, weight, split}] where each source is converted on its own (sources may use
    different formats) and kept at `weight` times its size (a fraction subsamples, above 1 repeats). `convert(ds,
    name)` returns (dataset, bad_record_count). Returns (dataset, bad_record_count, per-source sizes)."""
    import datasets

    if not dataset_name and not mixture:
        raise RecipeError("dataset_name: set it (or dataset_mixture)")
    sources = [{"path": dataset_name, "split": split, "weight": 1.0}] if dataset_name else mixture
    parts, bad, sizes = [], 0, {}
    for i, source in enumerate(sources):
        if "path" not in source:
            raise RecipeError(f"dataset_mixture[{i}]: needs a 'path'")
        ds, n_bad = convert(load_records(source["path"], source.get("split", "train")), source["path"])
        weight = float(source.get("weight", 1.0))
        whole, fraction = int(weight), weight - int(weight)
        picked = [ds] * whole
        if fraction:
            picked.append(ds.shuffle(seed=seed).select(range(round(len(ds) * fraction))))
        part = datasets.concatenate_datasets(picked) if len(picked) > 1 else picked[0]
        parts.append(part)
        bad += n_bad
        sizes[source["path"]] = len(part)
    dataset = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return (dataset.shuffle(seed=seed) if len(parts) > 1 else dataset), bad, sizes


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
