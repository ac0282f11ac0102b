"""Input checks and dataset loading: local JSONL/Parquet files and folders, or hub dataset ids (real-scale recipes)."""

import glob
import json
import os

from llm_recipes.errors import RecipeError

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


def load_hub_dataset(name, config_name, split, key, **kwargs):
    """datasets.load_dataset for a hub id; offline and not cached -> one line naming it and the setting."""
    import datasets

    try:
        return datasets.load_dataset(name, config_name, split=split, **kwargs)
    except Exception as e:  # datasets raises ConnectionError, DatasetNotFoundError, FileNotFoundError, ... offline
        offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
        if not offline:
            raise
        raise RecipeError(f"{key}: {name} is a hub dataset that is not in the local cache, and HF_DATASETS_OFFLINE=1 "
                          f"/ HF_HUB_OFFLINE=1 ({type(e).__name__}): download it first or set both to 0") from None


def load_records(dataset_name, split="train", required_keys=(), text_keys=(), key="dataset_name", config_name=None):
    """`dataset_name` is a local file/folder/glob (validated line by line) or a hub dataset id."""
    import datasets

    if is_local(dataset_name):
        files = expand_files(dataset_name, key)
        validate_files(files, required_keys, text_keys)
        builder = "parquet" if files[0].endswith(".parquet") else "json"
        return datasets.load_dataset(builder, data_files=files, split="train")
    ds = load_hub_dataset(dataset_name, config_name, split, key)
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

        for record in load_hub_dataset(path, config_name, "train", "input_path", streaming=True):
            if limit is not None and n >= limit:
                return
            n += 1
            yield record[text_key]


def load_sources(dataset_name, split, mixture, convert, seed=0, subset_seed=None):
    """One dataset, or a mixture [{path, weight, split}] where each source is converted on its own (sources may use
    different formats) and kept at `weight` times its size (a fraction subsamples, above 1 repeats). A fraction is a
    prefix of one shuffled order of its source (`subset_seed`, default `seed`), so with the same subset_seed the
    subsets are nested: 20 % is inside 40 %, ..., inside 100 %. `convert(ds, name)` returns (dataset,
    bad_record_count). Returns (dataset, bad_record_count, per-source sizes)."""
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
            order = ds.shuffle(seed=seed if subset_seed is None else subset_seed)
            picked.append(order.select(range(round(len(ds) * fraction))))
        part = datasets.concatenate_datasets(picked) if len(picked) > 1 else picked[0]
        parts.append(part)
        bad += n_bad
        sizes[source["path"]] = len(part)
    dataset = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return (dataset.shuffle(seed=seed) if len(parts) > 1 else dataset), bad, sizes
