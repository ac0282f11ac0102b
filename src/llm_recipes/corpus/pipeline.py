"""The corpus stage's datatrove pipelines (scripts/corpus.py): five stages chained with `depends=`, each an executor
(local, Slurm or Ray) over datatrove's readers, filters, dedup steps and writers and this package's steps (steps)."""

import os

from llm_recipes.corpus.defaults import language_filters


def build_pipelines(args):
    """The stages, each a datatrove executor depending on the one before: 1 filter; 2 exact document dedup (optional);
    3 MinHash: signatures, buckets, exact-Jaccard verification of the candidates (optional), clusters; 4 sentence
    dedup (optional); 5 the dedup filters and PII masking. Every dedup stage reads `filtered/` through the filters of
    the dedups before it (without their exclusion writers), so document indices agree; only stage 5 writes removed/."""
    from datatrove.pipeline.dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
        SentDedupConfig,
        SentenceDedupSignature,
        SentenceFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader, ParquetReader
    from datatrove.pipeline.writers import JsonlWriter

    from llm_recipes.corpus.executors import make_executor
    from llm_recipes.corpus.steps import (
        CharNgramMinhashSignature,
        LinguaLanguageFilter,
        MinhashVerifyCandidates,
        PIIMasker,
        SentenceDedupCounter,
        ValidatingJsonlReader,
        document_text,
        text_normalizers,
    )

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
    language = LinguaLanguageFilter(args.languages, args.language_threshold, thresholds=args.language_thresholds,
                                    exclusion_writer=removed("language"))
    rules = {"language": language, **language_filters(args, removed)}
    if args.quality_classifier:  # the filter stage's last rule: datatrove's fastText filter with a trained model
        from llm_recipes.corpus.steps import quality_classifier_filter

        rules["quality_classifier"] = quality_classifier_filter(args.quality_classifier, removed("quality_classifier"),
                                                                args.dry_run)
    exact = ExactDedupConfig(content_getter=document_text)
    sentence = dict(args.sentence_dedup or {})
    sentence_language = sentence.pop("language", args.minhash_language)
    sentence = SentDedupConfig(**sentence)
    # the dedup filters in pipeline order; each stage reads filtered/ through those before it
    dedup_filters = {
        "exact_dedup": lambda writer: ExactDedupFilter(f"{out}/exact/dups", exact, exclusion_writer=writer),
        "minhash_dedup": lambda writer: MinhashDedupFilter(f"{out}/minhash/remove_ids", exclusion_writer=writer),
        "sentence_dedup": lambda writer: SentenceDedupCounter(f"{out}/sentence/dups", sentence, writer,
                                                              sentence_language,
                                                              JsonlWriter(f"{out}/edited/sentence_dedup",
                                                                          compression=None) if writer else None),
    }
    enabled = [rule for rule, on in (("exact_dedup", args.exact_dedup), ("minhash_dedup", True),
                                     ("sentence_dedup", args.sentence_dedup is not None)) if on]

    def read_filtered(until=None):  # file_path is in the metadata since stage 1: no need to resolve it per document
        return [JsonlReader(f"{out}/filtered", add_file_path=False),
                *[dedup_filters[r](None) for r in enabled[:enabled.index(until) if until else 0]]]

    stages = []

    def executor(name, pipeline, tasks=args.tasks):
        stages.append(make_executor(args, name, pipeline, stages[-1] if stages else None, tasks))

    executor("1_filter", [
        reader, language, *text_normalizers(args.fix_encoding, args.normalization),  # ftfy + NFKC, tidy line ends
        *list(rules.values())[1:], JsonlWriter(f"{out}/filtered", compression=None),
    ])
    if args.exact_dedup:
        executor("2a_exact_signatures", [*read_filtered("exact_dedup"),
                                         ExactDedupSignature(f"{out}/exact/signatures", exact)])
        executor("2b_exact_find", [ExactFindDedups(f"{out}/exact/signatures", f"{out}/exact/dups", exact)], tasks=1)
    if args.minhash_shingles == "chars":
        signature = CharNgramMinhashSignature(f"{out}/minhash/signatures", config=minhash,
                                              shingles_folder=f"{out}/minhash/shingles" if args.minhash_verify else None)
    else:
        signature = MinhashDedupSignature(f"{out}/minhash/signatures", config=minhash, language=args.minhash_language)
    executor("3a_minhash_signatures", [*read_filtered("minhash_dedup"), signature])
    executor("3b_minhash_buckets", [
        MinhashDedupBuckets(f"{out}/minhash/signatures", f"{out}/minhash/buckets", config=minhash),
    ], tasks=args.minhash_buckets)
    pairs = f"{out}/minhash/buckets"
    if args.minhash_verify:
        executor("3c_minhash_verify", [MinhashVerifyCandidates(pairs, f"{out}/minhash/shingles",
                                                               f"{out}/minhash/verified", args.minhash_threshold)],
                 tasks=args.minhash_buckets)
        pairs = f"{out}/minhash/verified"
    executor("3d_minhash_clusters", [
        MinhashDedupCluster(pairs, f"{out}/minhash/remove_ids", config=minhash),
    ], tasks=1)
    if args.sentence_dedup is not None:
        executor("4a_sentence_signatures", [*read_filtered("sentence_dedup"), SentenceDedupSignature(
            f"{out}/sentence/signatures", config=sentence, language=sentence_language)])
        executor("4b_sentence_find", [SentenceFindDedups(f"{out}/sentence/signatures", f"{out}/sentence/dups",
                                                         config=sentence)], tasks=1)
    final = {rule: dedup_filters[rule](removed(rule)) for rule in enabled}
    pii = PIIMasker(args.email_replacement, "<IP>", args.phone_replacement, args.postal_code_replacement,
                    args.my_number_replacement, args.credit_card_replacement)
    executor("5_dedup_and_pii", [*read_filtered(), *final.values(), pii,
                                 JsonlWriter(f"{out}/kept", compression=None)])
    names = {"read": repr(reader), "pii": repr(pii), "removed": {
        **({"invalid": ("1_filter", repr(reader))} if args.on_invalid == "skip" else {}),
        **{rule: ("1_filter", repr(step)) for rule, step in rules.items()},
        **{rule: ("5_dedup_and_pii", repr(step)) for rule, step in final.items()}}}
    return stages, names
