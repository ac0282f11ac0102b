"""The tiny world's vocabulary and text generators (villages, facts, filler sentences, planted noise, reading
comprehension), used by recipes/tiny/data/prepare.py. Deterministic given the random.Random passed in."""

SYLLABLES = [("カ", "ka"), ("キ", "ki"), ("ク", "ku"), ("コ", "ko"), ("サ", "sa"), ("シ", "shi"), ("ス", "su"),
             ("ソ", "so"), ("タ", "ta"), ("ト", "to"), ("ナ", "na"), ("ニ", "ni"), ("ノ", "no"), ("ハ", "ha"),
             ("ヒ", "hi"), ("ホ", "ho"), ("マ", "ma"), ("ミ", "mi"), ("モ", "mo"), ("ラ", "ra"), ("リ", "ri"),
             ("ル", "ru"), ("ロ", "ro"), ("ワ", "wa"), ("ア", "a"), ("イ", "i"), ("エ", "e"), ("オ", "o")]

# attribute kind -> (Japanese question, Japanese fact paraphrases, English fact template, values [(ja, en)])
ATTRIBUTES = {
    "fruit": ("{v}村の名産は何ですか？", ["{v}村の名産は{a}です。", "{v}村では{a}がたくさん育てられています。",
                                     "{a}は{v}村の名産として知られています。"], "The specialty of {v} village is {a}.",
              [("リンゴ", "apples"), ("ミカン", "oranges"), ("ブドウ", "grapes"), ("モモ", "peaches"),
               ("ナシ", "pears"), ("イチゴ", "strawberries"), ("メロン", "melons"), ("クリ", "chestnuts")]),
    "animal": ("{v}村の守り神の動物は何ですか？", ["{v}村の守り神の動物は{a}です。", "{a}は{v}村の守り神です。",
                                           "{v}村の人々は{a}を守り神としてまつっています。"],
               "The guardian animal of {v} village is the {a}.",
               [("キツネ", "fox"), ("タヌキ", "raccoon dog"), ("ウサギ", "rabbit"), ("フクロウ", "owl"),
                ("シカ", "deer"), ("クマ", "bear"), ("ネコ", "cat"), ("サル", "monkey")]),
    "color": ("{v}村の旗の色は何色ですか？", ["{v}村の旗の色は{a}です。", "{v}村の旗は{a}に染められています。",
                                         "{a}の旗が{v}村の目印です。"], "The flag of {v} village is {a}.",
              [("赤", "red"), ("青", "blue"), ("緑", "green"), ("黄色", "yellow"), ("白", "white"),
               ("黒", "black"), ("紫", "purple"), ("茶色", "brown")]),
}

# Filler sentences: slots are filled at random so that documents about different villages do not look alike.
JA_FILLERS = [
    "{v}村は{dir}の山あいにある小さな村です。", "{v}村の人口はおよそ{n}人です。",
    "毎年{month}月には{v}村で大きな祭りが開かれます。", "{v}村には{n2}年に建てられた古い{bld}があります。",
    "{v}村の子どもたちは{bld}の前でよく遊んでいます。", "{v}村へは駅からバスで{k}分ほどかかります。",
    "{v}村の{bld}は観光客にも人気があります。", "{month}月になると{v}村の川では魚がたくさんとれます。",
    "{v}村の人々はとても親切で、旅人をあたたかく迎えます。", "{v}村の冬は長く、雪が{k}日も続くことがあります。",
    "昔、{v}村には{person}という名の職人が住んでいました。", "{person}さんは{v}村で{n2}年から{bld}を守っています。",
    "{v}村の朝は早く、農家の人たちは{h}時に起きます。", "{v}村では{month}月に田植えが始まります。",
    "{person}さんの話では、{v}村の{bld}の裏には{thing}が埋まっているそうです。", "{v}村の名物料理は{food}です。",
    "{v}村の{bld}のそばには大きな{tree}の木が立っています。", "{v}村の学校では{person}先生が{subject}を教えています。",
    "{v}村の市場では{food}がよく売れます。", "{season}の{v}村は{tree}の花で有名です。",
    "{v}村の若者たちは{season}になると{sport}を楽しみます。", "{person}さんは{v}村の{bld}で{thing}を見つけました。",
    "{v}村の道はせまく、{thing}を運ぶのに苦労します。", "{v}村に伝わる昔話には{thing}がよく出てきます。",
    "{v}村の{bld}では{season}に{food}がふるまわれます。", "{v}村の人たちは{subject}がとても得意です。",
]
EN_FILLERS = [
    "{v} is a small village in the {dir_en} hills.", "About {n} people live in {v}.",
    "Every year in month {month}, {v} holds a large festival.", "{v} has an old {bld_en} built in {n2}.",
    "The bus from the station to {v} takes about {k} minutes.", "Travellers say the people of {v} are friendly.",
    "In winter, snow in {v} can last for {k} days.", "A craftsman named {person_en} once lived in {v}.",
]
DIRS = [("北", "northern"), ("南", "southern"), ("東", "eastern"), ("西", "western")]
BUILDINGS = [("神社", "shrine"), ("寺", "temple"), ("橋", "bridge"), ("図書館", "library"), ("水車小屋", "watermill")]
PEOPLE = [("たなか", "Tanaka"), ("すずき", "Suzuki"), ("やまだ", "Yamada"), ("いとう", "Ito"), ("わたなべ", "Watanabe"),
          ("こばやし", "Kobayashi"), ("さとう", "Sato"), ("おがわ", "Ogawa"), ("もりた", "Morita"), ("はやし", "Hayashi")]
SLOTS = {"thing": ["古い鏡", "金の鈴", "石のつぼ", "木の人形", "銀の鍵", "大きな太鼓"],
         "food": ["そば", "おにぎり", "みそ汁", "焼き魚", "だんご", "つけもの"],
         "tree": ["さくら", "うめ", "けやき", "すぎ", "まつ", "いちょう"],
         "subject": ["算数", "歌", "書道", "絵", "昔話", "料理"],
         "season": ["春", "夏", "秋", "冬"], "sport": ["すもう", "つな引き", "水泳", "かけっこ", "たこあげ"]}

SPAM = ["激安セール開催中！今すぐクリック！", "BUY CHEAP WATCHES NOW!!! BEST PRICE!!!", "副業で月収100万円！登録は今すぐ！"]
WRONG_LANGUAGE = [
    "이 마을은 산속에 있는 작은 마을입니다. 매년 여름에 큰 축제가 열리고 많은 사람들이 찾아옵니다. 마을 사람들은 매우 친절합니다.",
    "Ce petit village se trouve dans les montagnes. Chaque été, une grande fête y est organisée et beaucoup de visiteurs viennent.",
    "Dieses kleine Dorf liegt in den Bergen. Jeden Sommer findet dort ein großes Fest statt, und viele Besucher kommen.",
    "Este pequeño pueblo está en las montañas. Cada verano se celebra una gran fiesta y llegan muchos visitantes.",
    "这个小村庄位于山区之中。每年夏天都会举办盛大的节日，许多游客慕名而来。村民们非常热情好客。",
    "Questo piccolo villaggio si trova tra le montagne. Ogni estate si tiene una grande festa e arrivano molti visitatori.",
]
PHONES = ["03-1234-5678", "090-2345-6789", "0120-123-456", "+81-80-3456-7890", "06-9876-5432", "070-1111-2222"]


def make_world(rng, n_villages):
    names = set()
    while len(names) < n_villages:
        sylls = rng.sample(SYLLABLES, 3)
        names.add(("".join(s[0] for s in sylls), "".join(s[1] for s in sylls).capitalize()))
    villages = []
    for ja, en in sorted(names):
        attrs = {kind: rng.randrange(len(spec[3])) for kind, spec in ATTRIBUTES.items()}
        villages.append({"ja": ja, "en": en, "attrs": attrs})
    rng.shuffle(villages)
    return villages


def fill(template, rng, v, lang):
    d, b, p = rng.choice(DIRS), rng.choice(BUILDINGS), rng.choice(PEOPLE)
    slots = {k: rng.choice(vals) for k, vals in SLOTS.items()}
    return template.format(**slots, v=v, dir=d[0], dir_en=d[1], bld=b[0], bld_en=b[1], person=p[0], person_en=p[1],
                           n=rng.randrange(200, 9000), n2=rng.randrange(1600, 1990), month=rng.randrange(1, 13),
                           k=rng.randrange(5, 60), h=rng.randrange(4, 7))


def fact(kind, village, lang, rng):
    q, ja_t, en_t, values = ATTRIBUTES[kind]
    value = values[village["attrs"][kind]]
    return rng.choice(ja_t).format(v=village["ja"], a=value[0]) if lang == "ja" else en_t.format(v=village["en"],
                                                                                                 a=value[1])


def document(rng, village, lang, n_fillers):
    facts = [fact(kind, village, lang, rng) for kind in ATTRIBUTES]
    fillers = [fill(t, rng, village["ja"] if lang == "ja" else village["en"], lang)
               for t in rng.sample(JA_FILLERS if lang == "ja" else EN_FILLERS, n_fillers)]
    sentences = facts + fillers
    rng.shuffle(sentences)
    per_par = 3
    paragraphs = [sentences[i:i + per_par] for i in range(0, len(sentences), per_par)]
    return "\n".join(("" if lang == "ja" else " ").join(p) for p in paragraphs)


def near_duplicate(rng, text, i):
    if i % 2 == 0:  # a boilerplate line appended
        return text + "\nこの記事の内容は予告なく変更されることがあります。"
    chars = list(text)  # a few characters edited
    for pos in rng.sample(range(len(chars)), 3):
        if chars[pos] not in "\n":
            chars[pos] = rng.choice("あいうえおかきくけこ")
    return "".join(chars)




def reading_comprehension(rng, taken, n_train, n_eval, n_probe):
    names = set()
    while len(names) < n_train + n_eval + n_probe:
        name = "".join(s[0] for s in rng.sample(SYLLABLES, 4))
        if name not in taken:
            names.add(name)
    names = sorted(names)
    rng.shuffle(names)

    def example(name, kinds):
        village = {"ja": name, "attrs": {k: rng.randrange(len(spec[3])) for k, spec in ATTRIBUTES.items()}}
        facts = [fact(k, village, "ja", rng) for k in kinds]
        sentences = facts + [fill(t, rng, name, "ja") for t in rng.sample(JA_FILLERS, rng.randrange(0, 8))]
        rng.shuffle(sentences)
        return village, "".join(sentences)

    def qa(village, kind):  # the FAQ pages' form (full-width, as in docs.jsonl, which this study pretrains on raw)
        q = ATTRIBUTES[kind][0].format(v=village["ja"])
        return f"質問：{q}\n答え：", f"{ATTRIBUTES[kind][3][village['attrs'][kind]][0]}です。"

    rows = []
    for name in names[:n_train + n_eval]:
        kinds = rng.sample(list(ATTRIBUTES), rng.randrange(1, 4))
        village, passage = example(name, kinds)
        asked = rng.choice(kinds)
        prompt, completion = qa(village, asked)
        rows.append({"prompt": f"{passage}\n{prompt}", "completion": completion, "answer": completion[:-3],
                     "candidates": [v[0] for v in ATTRIBUTES[asked][3]]})
    probe = []
    for name in names[n_train + n_eval:]:
        first, second = rng.sample(list(ATTRIBUTES), 2)
        village, passage = example(name, [first, second])
        prompt, completion = qa(village, first)
        question, answer = qa(village, second)
        probe.append({"context": f"{passage}\n{prompt}{completion}", "question": question, "answer": answer[:-3],
                      "candidates": [v[0] for v in ATTRIBUTES[second][3]]})
    return {"rc_train.jsonl": rows[:n_train], "rc_eval.jsonl": rows[n_train:], "eos_probe.jsonl": probe}


# Web-like low-quality text (navigation boilerplate, SEO spam, shop listings, forum chatter): negatives for the quality
# classifier (recipes/quality-classifier). Not used by recipes/tiny/data/prepare.py, so the shipped files do not change.
WEB_KEYWORDS = ["ダイエットサプリ", "格安スマホ", "脱毛サロン", "FX自動売買", "転職エージェント", "ウォーターサーバー",
                "クレジットカード", "美容液", "ふるさと納税", "プログラミングスクール", "副業", "オンラインカジノ"]
WEB_LINES = {
    "boilerplate": ["ホーム > {kw} > 記事一覧", "ログイン | 新規会員登録 | マイページ | カート({n})",
                    "Copyright © {year} {kw}ナビ All Rights Reserved.", "このサイトはクッキーを使用しています。[同意する]",
                    "前の記事へ | 次の記事へ", "人気記事ランキング", "タグ: {kw}, {kw2}, おすすめ, 比較",
                    "シェアする ツイート いいね！ {n}", "お問い合わせ | プライバシーポリシー | 利用規約 | サイトマップ",
                    "※価格は税込です。在庫状況は変動する場合があります。", "投稿日：{year}/{month}/{day} 更新日：{year}/{month}/{day}"],
    "seo": ["【{year}年最新】{kw}おすすめランキング{n}選！", "{kw}が激安！送料無料・ポイント{n}倍",
            "今なら{kw}が{n}%OFF！今すぐチェック→", "{kw}の口コミ・評判まとめ【徹底比較】", "{kw} 通販 安い 最安値 比較 {kw2}",
            "副業で月収{n}万円！初心者でも簡単に稼げる方法", "詳しくはこちらをクリック！！", "【PR】{kw}で人生が変わった話",
            "{kw}を選ぶならココ！{kw2}もセットでお得", "無料登録で{n}ポイントプレゼント中！"],
    "shop": ["商品番号：{kw}-{n} 在庫あり", "{kw} {n}個セット ¥{price}（税込） 送料無料", "カートに入れる ＞ お気に入りに追加",
             "レビュー（{n}件） ★★★★☆", "この商品を見た人はこんな商品も見ています：{kw2}"],
    "blog": ["こんにちは！{kw}ブロガーのたなかです。", "今日は{kw}について書いていきたいと思います。",
             "結論から言うと、{kw}は最高でした！", "ぜひ参考にしてみてくださいね♪", "最後まで読んでいただきありがとうございました！",
             "実は私も{n}年前までは{kw}のことを全然知りませんでした。", "気になる方は下のリンクからどうぞ。",
             "それでは、また次の記事でお会いしましょう！", "{kw}と{kw2}、どっちがいいのか迷いますよね。"],
    "chatter": ["それなｗｗｗ", "草", "まじかよ", "{n}：名無しさん：{kw}ってどうなん？", "俺も{kw}買ったけどイマイチだった",
                "kwsk", "うpはよ", ">>{n} それはない"],
}


def web_noise(rng):
    """One web-like low-quality page: 4-10 lines drawn from navigation boilerplate, SEO spam, shop listings, blog
    small talk and forum chatter, slots filled at random."""
    kinds = rng.sample(sorted(WEB_LINES), rng.randrange(1, 4))
    lines = []
    for _ in range(rng.randrange(4, 11)):
        template = rng.choice(WEB_LINES[rng.choice(kinds)])
        kw, kw2 = rng.sample(WEB_KEYWORDS, 2)
        lines.append(template.format(kw=kw, kw2=kw2, n=rng.randrange(2, 100), year=rng.randrange(2015, 2026),
                                     month=rng.randrange(1, 13), day=rng.randrange(1, 29),
                                     price=f"{rng.randrange(5, 300) * 100:,}"))
    return "\n".join(lines)


def slick_facts(rng, train, test, n_unseen=40, heldout_fraction=0.4):
    """Facts for SliCK (recipes/slick): every attribute of the train villages (seen in pretraining as prose and as FAQ
    question/answer pages: `seen` = faq), of the test villages (prose only: `seen` = prose) and of `n_unseen` new
    villages whose names have the same three-syllable form but appear in no document (random attributes: `seen` =
    unseen). Questions in the FAQ pages' form (not NFKC-normalised, as docs.jsonl is pretrained on raw). Within each
    group a `heldout_fraction` of the villages go to the held-out split, the rest to the fine-tuning split."""
    taken = {v["ja"] for v in train + test}
    names = set()
    while len(names) < n_unseen:
        name = "".join(s[0] for s in rng.sample(SYLLABLES, 3))
        if name not in taken:
            names.add(name)
    unseen = [{"ja": name, "attrs": {k: rng.randrange(len(spec[3])) for k, spec in ATTRIBUTES.items()}}
              for name in sorted(names)]
    rng.shuffle(unseen)
    rows = []
    for seen, group in (("faq", train), ("prose", test), ("unseen", unseen)):
        n_heldout = round(len(group) * heldout_fraction)
        for i, village in enumerate(group):
            for kind, (question, _, _, values) in ATTRIBUTES.items():
                rows.append({"question": question.format(v=village["ja"]), "answer": values[village["attrs"][kind]][0],
                             "relation": kind, "village": village["ja"], "seen": seen,
                             "split": "heldout" if i < n_heldout else "finetune"})
    return rows
