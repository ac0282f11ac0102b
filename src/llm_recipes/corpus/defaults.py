"""Per-language defaults of datatrove's Gopher and FineWeb filters for the corpus stage.

Japanese: FineWeb-2's published `jpn_Jpan` settings (huggingface/fineweb-2 configs/jpn_Jpan.yml: dup_line_frac 0.375,
top_n_grams 2: 0.121, 3: 0.129, 4: 0.145, dup_n_grams 5-10, line_punct_thr 0.167, new_line_ratio 0.162, word length
1-5, max_non_alpha_words_ratio 0.759, 15 stop words); words come from datatrove's Japanese word tokenizer (spaCy +
SudachiPy). English: datatrove's defaults, which are FineWeb's. A recipe overrides any key per
language, e.g. `gopher_quality: {ja: {min_doc_words: 20}}`, or switches a filter off for a language with `{ja: null}`.
"""

JA_STOP_WORDS = ["の", "に", "を", "は", "た", "て", "が", "と", "で", "年", "し", "・", "月", "れ", "さ"]
JA_STOP_CHARS = ("。", "！", "？", "!", "?", "」", "』", ")", "）", ".", "…")

DEFAULTS = {
    "gopher_repetition": {
        "ja": {"language": "ja", "dup_line_frac": 0.375, "dup_para_frac": 0.3, "dup_line_char_frac": 0.2,
               "dup_para_char_frac": 0.2, "top_n_grams": ((2, 0.121), (3, 0.129), (4, 0.145)),
               "dup_n_grams": ((5, 0.307), (6, 0.283), (7, 0.264), (8, 0.248), (9, 0.234), (10, 0.223))},
        "en": {"language": "en"},
    },
    "gopher_quality": {
        "ja": {"language": "ja", "min_doc_words": 50, "min_avg_word_length": 1, "max_avg_word_length": 5,
               "max_non_alpha_words_ratio": 0.759, "stop_words": JA_STOP_WORDS, "min_stop_words": 2},
        "en": {"language": "en"},
    },
    "fineweb_quality": {
        "ja": {"language": "ja", "line_punct_thr": 0.167, "new_line_ratio": 0.162, "stop_chars": JA_STOP_CHARS},
        "en": {"language": "en"},
    },
}


def filter_settings(kind, lang, overrides):
    """Defaults for (filter kind, language) merged with the recipe's overrides; None means the filter is off."""
    overrides = overrides or {}
    if lang in overrides and overrides[lang] is None:
        return None
    settings = {**DEFAULTS[kind].get(lang, {"language": lang}), **(overrides.get(lang) or {})}
    for key in ("top_n_grams", "dup_n_grams"):  # YAML gives lists of lists
        if key in settings:
            settings[key] = tuple(tuple(x) for x in settings[key])
    return settings


def language_filters(args, removed):
    """Per-language datatrove filters with the defaults of llm_recipes.corpus.defaults, overridden by the recipe."""
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    from llm_recipes.corpus.steps import JapaneseQualityFilter, OnlyLanguages

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
