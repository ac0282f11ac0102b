"""Corpus stage: read -> language ID -> normalize -> repetition + quality filters -> MinHash near-dedup -> PII masking.

    python scripts/corpus.py --config recipes/ja-web/corpus.yaml [--key value ...]
    python scripts/corpus.py --config recipes/ja-web-fineweb2/corpus.yaml --dry_run true   # build and print only

A thin composition of datatrove blocks (see datatrove's examples/fineweb.py): five stages chained with `depends=`, on
datatrove's local, Slurm or Ray executor (`executor`), so an interrupted run resumes from datatrove's completions.
Writes
  output_dir/kept/            the documents that survive (JSONL)
  output_dir/removed/<rule>/  what each removing rule dropped, for auditing (removed/invalid/: unreadable lines)
  output_dir/report.json      read / kept / removed per rule (read = kept + sum(removed) holds exactly), + report.md,
                              funnel.png and minhash_scurve.png
"""

import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import RecipeError, check_choices, parse, run
from llm_recipes.corpus import NG_WORDS_JA
from llm_recipes.corpus.report import count_kept, minhash_curve, summarize, write_corpus_report
from llm_recipes.data import expand_files, is_local, validate_files
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
    minhash_buckets: int = 14
    minhash_hashes_per_bucket: int = 8
    minhash_ngrams: int = 5
    minhash_shingles: str = field(default="chars", metadata={"help": "chars (character n-grams) | words"})
    minhash_language: str = field(default="ja", metadata={"help": "word tokenizer when minhash_shingles=words"})
    email_replacement: str = "<EMAIL>"
    phone_replacement: str = "<PHONE>"
    postal_code_replacement: str = "〒<POSTAL_CODE>"
    my_number_replacement: str = "<MY_NUMBER>"
    credit_card_replacement: str = "<CREDIT_CARD>"


ARGUMENTS = (CorpusArguments,)  # the dataclasses a recipe file for this stage fills


def language_filters(args, removed):
    """Per-language datatrove filters with the defaults of llm_recipes.corpus.defaults, overridden by the recipe."""
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    from llm_recipes.corpus.blocks import JapaneseQualityFilter, OnlyLanguages
    from llm_recipes.corpus.defaults import filter_settings

    classes = {"gopher_repetition": GopherRepetitionFilter, "gopher_quality": GopherQualityFilter,
               "fineweb_quality": FineWebQualityFilter}
    rules = {}
    for kind, cls in classes.items():
        for lang in args.languages:
            settings = filter_settings(kind, lang, getattr(args, kind))
            if settings is not None:
                rules[f"{kind}_{lang}"] = OnlyLanguages(cls(**settings), [lang],
                                                        exclusion_writer=removed(f"{kind}_{lang}"))
    if "ja" in args.languages and args.japanese_quality is not False:
        settings = {"ng_words_file": args.ng_words_file, **(args.japanese_quality or {})}
        rules["japanese_quality"] = OnlyLanguages(JapaneseQualityFilter(**settings), ["ja"],
                                                  exclusion_writer=removed("japanese_quality"))
    return rules


def build_pipelines(args):
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader, ParquetReader
    from datatrove.pipeline.writers import JsonlWriter

    from llm_recipes.corpus.blocks import (
        CharNgramMinhashSignature,
        LinguaLanguageFilter,
        PIIMasker,
        ValidatingJsonlReader,
        text_normalizers,
    )
    from llm_recipes.corpus.report import make_executor

    out = args.output_dir.rstrip("/")

    def removed(rule):
        return JsonlWriter(f"{out}/removed/{rule}", compression=None)

    single_file = os.path.isfile(args.input_path)
    folder = os.path.dirname(args.input_path) if single_file else args.input_path
    # datatrove turns a pattern without wildcards into "*<pattern>" (docs.jsonl would also match pit_docs.jsonl):
    # "[d]ocs.jsonl" is a wildcard pattern that matches the one file only
    name = os.path.basename(args.input_path)
    pattern = f"[{name[0]}]{name[1:]}" if single_file else None
    parquet = args.input_format == "parquet" or args.input_format == "auto" and ".parquet" in args.input_path
    common = dict(text_key=args.text_key, id_key=args.id_key, glob_pattern=pattern)
    if parquet:
        reader = ParquetReader(folder, **common)
    elif args.on_invalid == "skip":
        reader = ValidatingJsonlReader(folder, f"{out}/removed/invalid", **common)
    else:
        reader = JsonlReader(folder, **common)
    minhash = MinhashConfig(n_grams=args.minhash_ngrams, num_buckets=args.minhash_buckets,
                            hashes_per_bucket=args.minhash_hashes_per_bucket)
    signature_cls = CharNgramMinhashSignature if args.minhash_shingles == "chars" else MinhashDedupSignature
    language = LinguaLanguageFilter(args.languages, args.language_threshold, thresholds=args.language_thresholds,
                                    exclusion_writer=removed("language"))
    rules = {"language": language, **language_filters(args, removed)}
    if args.quality_classifier:  # the filter stage's last rule: datatrove's fastText filter with a trained model
        from llm_recipes.corpus.blocks import quality_classifier_filter

        rules["quality_classifier"] = quality_classifier_filter(args.quality_classifier, removed("quality_classifier"),
                                                                args.dry_run)
    dedup = MinhashDedupFilter(f"{out}/minhash/remove_ids", exclusion_writer=removed("minhash_dedup"))
    pii = PIIMasker(args.email_replacement, "<IP>", args.phone_replacement, args.postal_code_replacement,
                    args.my_number_replacement, args.credit_card_replacement)
    writer = JsonlWriter(f"{out}/kept", compression=None)

    def executor(name, pipeline, depends=None, tasks=args.tasks):
        return make_executor(args, name, pipeline, depends, tasks)

    normalizers = text_normalizers(args.fix_encoding, args.normalization)  # ftfy + NFKC, tidy line ends
    filtering = executor("1_filter", [
        reader, language, *normalizers,
        *list(rules.values())[1:], JsonlWriter(f"{out}/filtered", compression=None),
    ])
    signatures = executor("2_minhash_signatures", [
        JsonlReader(f"{out}/filtered"),
        signature_cls(f"{out}/minhash/signatures", config=minhash, language=args.minhash_language),
    ], depends=filtering)
    buckets = executor("3_minhash_buckets", [
        MinhashDedupBuckets(f"{out}/minhash/signatures", f"{out}/minhash/buckets", config=minhash),
    ], depends=signatures, tasks=args.minhash_buckets)
    clusters = executor("4_minhash_clusters", [
        MinhashDedupCluster(f"{out}/minhash/buckets", f"{out}/minhash/remove_ids", config=minhash),
    ], depends=buckets, tasks=1)
    final = executor("5_dedup_and_pii", [JsonlReader(f"{out}/filtered"), dedup, pii, writer], depends=clusters)
    names = {"read": repr(reader), "pii": repr(pii), "removed": {
        **({"invalid": ("1_filter", repr(reader))} if args.on_invalid == "skip" else {}),
        **{rule: ("1_filter", repr(step)) for rule, step in rules.items()},
        "minhash_dedup": ("5_dedup_and_pii", repr(dedup))}}
    return [filtering, signatures, buckets, clusters, final], names


def main(args: CorpusArguments):
    start = time.time()
    check_choices(args, executor=("local", "slurm", "ray"), on_invalid=("error", "skip"),
                  minhash_shingles=("chars", "words"), input_format=("auto", "jsonl", "parquet"))
    threshold, probabilities = minhash_curve(args.minhash_buckets, args.minhash_hashes_per_bucket)
    print(f"MinHash {args.minhash_buckets} buckets x {args.minhash_hashes_per_bucket} hashes: threshold ~ "
          f"{threshold:.3f}; P(detect) at Jaccard " + ", ".join(f"{s}: {p:.3f}" for s, p in probabilities.items()))
    if args.dry_run:
        stages, _ = build_pipelines(args)
        for stage in stages:
            print(f"\n[{stage.logging_dir.path}] {stage.world_size} task(s)")
            for step in stage.pipeline:
                print(f"  {step}")
        if args.executor == "slurm":
            from llm_recipes.corpus.report import write_slurm_scripts

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
    if args.executor == "local":
        stages[0].run()
        if not os.path.isdir(f"{out}/filtered") or not os.listdir(f"{out}/filtered"):
            print("warning: no document survived filtering; near-dedup skipped")
            os.makedirs(f"{out}/kept", exist_ok=True)
            stages = stages[:1]
    stages[-1].run()  # local and Ray: runs every stage; Slurm: submits the jobs (each stage depends on the last)
    unfinished = [s.logging_dir.path for s in stages if s.get_incomplete_ranks()]
    if unfinished:  # Slurm jobs still queued or running: a re-run of this command (nothing re-runs) writes the report
        print(f"submitted to {args.executor}; {len(unfinished)} stage(s) not finished ({unfinished[0]} ...); re-run "
              "this command after the jobs finish to write the report")
        return None
    read, removed, masked = summarize(out, names)
    kept = count_kept(out)
    if read != kept + sum(removed.values()):
        raise RecipeError(f"{args.output_dir}: accounting mismatch: read {read} != kept {kept} + removed {removed}")
    return write_corpus_report(args, read, kept, removed, masked, threshold, probabilities, time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
