"""Corpus stage: read -> language ID -> normalize -> repetition + quality filters -> MinHash near-dedup -> PII masking.

    python scripts/corpus.py --config recipes/ja-web/corpus.yaml [--key value ...]
    python scripts/corpus.py --config recipes/ja-web-fineweb2/corpus.yaml --dry_run true   # build and print only

A thin composition of datatrove blocks (llm_recipes.corpus.pipeline; see datatrove's examples/fineweb.py): five stages
chained with `depends=`, on datatrove's local, Slurm or Ray executor (`executor`), so an interrupted run resumes from
datatrove's completions.
Writes
  output_dir/kept/            the documents that survive (JSONL)
  output_dir/removed/<rule>/  what each removing rule dropped, for auditing (removed/invalid/: unreadable lines)
  output_dir/report.json      read / kept / removed per rule (read = kept + sum(removed) holds exactly), + report.md,
                              funnel.png and minhash_scurve.png
"""

import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import check_choices, parse, run
from llm_recipes.corpus import NG_WORDS_JA
from llm_recipes.corpus.accounting import count_kept, stage_costs, summarize, write_corpus_report
from llm_recipes.corpus.lsh_params import choose_minhash, minhash_curve
from llm_recipes.corpus.pipeline import build_pipelines
from llm_recipes.data import expand_files, is_local, validate_files
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import check_output_dir, clear_report


@dataclass
class CorpusArguments:
    input_path: str = field(metadata={"help": "JSONL/Parquet file, folder or glob (local, s3://, hf://datasets/...)"})
    output_dir: str = field(metadata={"help": "where kept/, removed/<rule>/ and report.json go"})
    text_key: str = "text"
    id_key: str = "id"
    input_format: str = field(default="auto", metadata={"help": "jsonl | parquet | auto (by file name)"})
    on_invalid: str = field(default="error", metadata={"help": "error: stop at file:line | skip: count in removed/invalid"})
    dry_run: bool = field(default=False, metadata={"help": "build and print the pipeline; read nothing"})
    executor: str = field(default="local", metadata={"help": "local | slurm | ray"})
    executor_options: dict | None = field(default=None, metadata={"help": "extra executor kwargs (slurm: partition, "
                                                                          "time, cpus_per_task, sbatch_args, ...)"})
    tasks: int = 1
    workers: int = 1
    languages: list[str] = field(default_factory=lambda: ["ja"], metadata={"help": "languages to keep"})
    language_threshold: float = 0.5
    language_thresholds: dict | None = field(default=None, metadata={"help": "per-language confidence, e.g. {ja: 0.8}"})
    fix_encoding: bool = field(default=True, metadata={"help": "ftfy (datatrove FTFYFormatter)"})
    normalization: str = field(default="NFKC", metadata={"help": "unicodedata form, or '' to skip"})
    japanese_quality: dict | None = field(default=None, metadata={"help": "JapaneseQualityFilter overrides; null: off"})
    ng_words_file: str | None = NG_WORDS_JA
    gopher_repetition: dict | None = field(default=None, metadata={"help": "{lang: {key: value} | null} overrides"})
    gopher_quality: dict | None = field(default=None, metadata={"help": "{lang: {key: value} | null} overrides"})
    fineweb_quality: dict | None = field(default=None, metadata={"help": "{lang: {key: value} | null} overrides"})
    quality_classifier: dict | None = field(default=None, metadata={
        "help": "{model: fastText .bin from scripts/quality_classifier.py, threshold: keep P(hq) >= this}; null: off"})
    exact_dedup: bool = field(default=False, metadata={"help": "exact document dedup first (datatrove ExactDedup*)"})
    minhash_threshold: float = field(default=0.8, metadata={"help": "Jaccard similarity of a near-duplicate pair: "
                                                                      "verified exactly, and picks buckets x hashes"})
    minhash_verify: bool = field(default=True, metadata={"help": "keep only candidate pairs whose exact Jaccard is >= "
                                                                 "minhash_threshold; false: datatrove's plain LSH"})
    minhash_buckets: int | None = field(default=None, metadata={"help": "null: chosen from minhash_threshold"})
    minhash_hashes_per_bucket: int | None = field(default=None, metadata={"help": "null: chosen from the threshold"})
    minhash_num_perm: int = field(default=112, metadata={"help": "most hashes (buckets x hashes) when choosing"})
    minhash_false_negative_weight: float | None = field(default=None, metadata={
        "help": "weight of the S-curve's false-negative area against its false-positive area when choosing; null: "
                "0.95 with verification (a false positive only costs a Jaccard check), else 0.5 (text-dedup)"})
    minhash_ngrams: int = 5
    minhash_shingles: str = field(default="chars", metadata={"help": "chars (character n-grams) | words"})
    minhash_language: str = field(default="ja", metadata={"help": "word tokenizer when minhash_shingles=words"})
    sentence_dedup: dict | None = field(default=None, metadata={
        "help": "after MinHash, drop every repeat of a duplicated 3-sentence span (C4; datatrove SentenceDedup*): "
                "SentDedupConfig keys (n_sentences, min_doc_words, min_num_sentences, ...) and language; "
                "{} for datatrove's defaults; null: off"})
    email_replacement: str = "<EMAIL>"
    phone_replacement: str = "<PHONE>"
    postal_code_replacement: str = "〒<POSTAL_CODE>"
    my_number_replacement: str = "<MY_NUMBER>"
    credit_card_replacement: str = "<CREDIT_CARD>"


ARGUMENTS = (CorpusArguments,)  # the dataclasses a recipe file for this stage fills


def main(args: CorpusArguments):
    start = time.time()
    check_choices(args, executor=("local", "slurm", "ray"), on_invalid=("error", "skip"),
                  minhash_shingles=("chars", "words"), input_format=("auto", "jsonl", "parquet"))
    if args.minhash_verify and args.minhash_shingles != "chars":
        raise RecipeError("minhash_verify: needs minhash_shingles: chars (the shingles it compares); set it false")
    args, chosen_by = choose_minhash(args)
    threshold, probabilities = minhash_curve(args.minhash_buckets, args.minhash_hashes_per_bucket)
    print(f"MinHash {args.minhash_buckets} buckets x {args.minhash_hashes_per_bucket} hashes ({chosen_by}): "
          f"S-curve midpoint ~ {threshold:.3f}; P(candidate) at Jaccard "
          + ", ".join(f"{s}: {p:.3f}" for s, p in probabilities.items())
          + (f"; candidates verified at Jaccard >= {args.minhash_threshold}" if args.minhash_verify else ""))
    if args.dry_run:
        stages, _ = build_pipelines(args)
        for stage in stages:
            print(f"\n[{stage.logging_dir.path}] {stage.world_size} task(s)")
            for step in stage.pipeline:
                print(f"  {step}")
        if args.executor == "slurm":
            from llm_recipes.corpus.executors import write_slurm_scripts

            print("\n".join(f"sbatch script: {p}" for p in write_slurm_scripts(stages)))
        return None
    if is_local(args.input_path) and args.on_invalid == "error":
        files = expand_files(args.input_path)
        n = validate_files(files, required_keys=[args.id_key] if args.id_key else [], text_keys=[args.text_key])
        print(f"input: {len(files)} file(s), {n} records, all valid")
    check_output_dir(args.output_dir, {k: v for k, v in vars(args).items()
                                       if k not in ("executor", "executor_options", "workers", "dry_run")})
    clear_report(args.output_dir)
    stages, names = build_pipelines(args)
    out = args.output_dir.rstrip("/")
    wall = {}
    if args.executor == "local":  # one stage at a time, timed (each skips the tasks an earlier run completed)
        for i, stage in enumerate(stages):
            t = time.time()
            stage.run()
            wall[os.path.basename(stage.logging_dir.path)] = round(time.time() - t, 2)
            if i == 0 and (not os.path.isdir(f"{out}/filtered") or not os.listdir(f"{out}/filtered")):
                print("warning: no document survived filtering; near-dedup skipped")
                os.makedirs(f"{out}/kept", exist_ok=True)
                stages = stages[:1]
                break
    else:
        stages[-1].run()  # Ray: runs every stage; Slurm: submits the jobs (each stage depends on the last)
    unfinished = [s.logging_dir.path for s in stages if s.get_incomplete_ranks()]
    if unfinished:  # Slurm jobs still queued or running: a re-run of this command (nothing re-runs) writes the report
        print(f"submitted to {args.executor}; {len(unfinished)} stage(s) not finished ({unfinished[0]} ...); re-run "
              "this command after the jobs finish to write the report")
        return None
    read, removed, masked = summarize(out, names)
    kept = count_kept(out)
    if read != kept + sum(removed.values()):
        raise RecipeError(f"{args.output_dir}: accounting mismatch: read {read} != kept {kept} + removed {removed}")
    return write_corpus_report(args, read, kept, removed, masked, threshold, probabilities, time.time() - start,
                               chosen_by, stage_costs(out, wall))


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
