"""Unit tests of the Japanese pieces datatrove lacks (recipekit.corpus_blocks)."""
from datatrove.data import Document

from llm_recipes.corpus.blocks import JapaneseQualityFilter, LinguaLanguageFilter, OnlyLanguages, PIIMasker

CLEAN_JA = "トコワ村は北の山あいにある小さな村です。毎年九月には大きな祭りが開かれ、村の人々はとても親切です。"


def doc(text, **metadata):
    return Document(text=text, id="x", metadata=dict(metadata))


def test_language_filter_keeps_ja_en_and_drops_others():
    f = LinguaLanguageFilter(["ja", "en"], threshold=0.5)
    d = doc(CLEAN_JA)
    assert f.filter(d) is True and d.metadata["language"] == "ja"
    assert f.filter(doc("The village lies in the northern hills and holds a large festival every year.")) is True
    assert f.filter(doc("이 마을은 산속에 있는 작은 마을입니다. 매년 여름에 큰 축제가 열립니다.")) == (False, "language_ko")


def test_japanese_quality_rules():
    f = JapaneseQualityFilter()
    assert f.filter(doc(CLEAN_JA)) is True
    assert f.filter(doc("トコワ")) == (False, "too_short")
    assert f.filter(doc("カタカナバカリノブンショウデス。" * 5)) == (False, "hiragana_frac")
    assert f.filter(doc("村" + "の" * 250 + "。")) == (False, "sentence_length")
    assert f.filter(doc("This is an English sentence that is long enough to be measured here.")) == (
        False, "japanese_frac")


def test_only_languages_skips_other_languages():
    f = OnlyLanguages(JapaneseQualityFilter(), ["ja"])
    assert f.filter(doc("short", language="en")) is True
    assert f.filter(doc("トコワ", language="ja")) == (False, "too_short")


def test_pii_masks_japanese_phones_and_emails_next_to_japanese():
    pii = PIIMasker()
    for phone in ["03-1234-5678", "090-2345-6789", "0120-123-456", "+81-80-3456-7890", "06-9876-5432"]:
        assert pii.format(f"お問い合わせは{phone}まで") == "お問い合わせは<PHONE>まで", phone
    # datatrove's own pattern starts with \b and misses an address glued to Japanese text
    assert pii.format("連絡先はinfo@example.co.jpです") == "連絡先は<EMAIL>です"
    assert pii.format("1990年から2020年まで") == "1990年から2020年まで"  # years are not phone numbers


def test_pii_cards_my_number_and_postal_codes_are_validated():
    pii = PIIMasker()
    assert pii.format("カードは4111 1111 1111 1111です") == "カードは<CREDIT_CARD>です"
    assert pii.format("カードは4111 1111 1111 1112です") == "カードは4111 1111 1111 1112です"  # fails Luhn
    assert pii.format("番号123456789018を") == "番号<MY_NUMBER>を"  # valid check digit
    assert pii.format("番号123456789012を") == "番号123456789012を"  # wrong check digit
    assert pii.format("〒100-0001 東京都") == "〒<POSTAL_CODE> 東京都"


def test_japanese_rules_ellipsis_ng_words_repetition_and_kuten(tmp_path):
    ng = tmp_path / "ng.txt"
    ng.write_text("# comment\n激安\n", encoding="utf-8")
    f = JapaneseQualityFilter(ng_words_file=str(ng), min_mean_sentence_length=None)
    assert f.filter(doc("今日は晴れでした…\n明日は雨でしょうか…\n" * 3)) == (False, "ellipsis")
    assert f.filter(doc("激安の時計を売っています。激安です。ぜひ見に来てくださいね。")) == (False, "ng_words")
    assert f.filter(doc("これはテストの文章です。" * 20)) == (False, "dup_char_ngrams")
    assert f.filter(doc("句点のないとても長い文章が続いていきますが" * 12)) == (False, "sentence_length")
    assert f.filter(doc(CLEAN_JA)) is True
