"""Quality signals: the per-answer arithmetic on hand-made answers, and the verdict that
refuses to call a model better when its answers became templates."""

from __future__ import annotations

from backends.core.reports.comparison import Answers
from backends.core.reports.quality import (
    distinct_n,
    opening,
    repeated_ngram_share,
    summarize_quality,
    text_signals,
)
from backends.core.reports.verdicts import headline, quality_table

VARIED = [
    "Rivers carve valleys over thousands of years and carry silt to the sea.",
    "A violin has four strings tuned in fifths and a body of spruce and maple.",
    "Deserts can be cold at night because dry air holds little heat.",
    "Old bookshops often keep a shelf of local history near the door.",
    "Pendulum clocks keep time because each swing takes the same interval.",
    "Owls hunt at night and their feathers make almost no sound.",
]
TEMPLATE = [f"This also brings to mind {t}. Children and adults can both enjoy {t}." for t in "abcdef"]


def test_text_signals_count_loops_and_words() -> None:
    assert distinct_n("the cat sat on the mat", 2) == 1.0
    assert distinct_n("go go go go", 2) == 1 / 3  # bigrams (go go) x3, one distinct
    assert abs(repeated_ngram_share("a b c d a b c d", 4) - 1 / 5) < 1e-9  # 5 four-grams, 4 distinct
    assert repeated_ngram_share("too short", 4) == 0.0
    assert opening("This also brings to mind rivers.") == "this also brings to mind"
    assert text_signals("One two, three.")["mean_words"] == 3.0


def _answers(models: dict[str, list[str]], scores: dict[str, list[float]]) -> Answers:
    ans = Answers()
    for m, texts in models.items():
        for pid, t in enumerate(texts):
            measured = [{"relevance": 0.5, **text_signals(t), "opening": opening(t)}]
            ans.add_quality(pid, m, measured)
            ans.length[(pid, m)] = len(t.split())
            ans.score[("checkers", pid, m)] = scores[m][pid]
    return ans


def _winrate(ans: Answers, models: list[str]) -> dict:
    from backends.core.reports.comparison import _pair

    quality, pairs = summarize_quality(models, ans.quality, ans.openings)
    judgments = [
        {"prompt_id": p, "a": models[0], "b": models[1], "judge": "checkers", "outcome": 0.0}
        for p in range(len(VARIED))
    ]
    pair = _pair("checkers", models[0], models[1], judgments, ans, scored=True)
    return {"models": models, "pairs": [pair], "quality": quality, "quality_pairs": pairs}


def test_a_template_model_with_higher_scores_is_not_called_better() -> None:
    models = ["builtin:base", "runs/sft/model"]
    ans = _answers(
        {models[0]: VARIED, models[1]: TEMPLATE}, {models[0]: [0.0, 0.5] * 3, models[1]: [1.0] * 6}
    )
    wr = _winrate(ans, models)
    assert wr["quality"][models[1]]["top_opening_share"]["mean"] == 1.0
    assert wr["quality"][models[0]]["top_opening_share"]["mean"] == 1 / 6
    (q,) = wr["quality_pairs"]
    assert q["top_opening_share"]["worse"] and not q["relevance"]["worse"]
    (sentence,) = headline(wr)
    assert sentence.startswith("sft is not better than base: higher checkers +0.750")
    assert "top opening share rose: +0.833" in sentence
    headers, rows = quality_table(wr)
    assert headers[0] == "model" and rows[1][-1] == "'this also brings to mind'"
    assert "worse" in rows[1][headers.index("top opening share")]


def test_a_model_that_scores_higher_and_keeps_quality_is_better() -> None:
    models = ["builtin:base", "runs/sft/model"]
    better = [t.replace(" and ", " and also ") for t in VARIED]
    ans = _answers({models[0]: VARIED, models[1]: better}, {models[0]: [0.0] * 6, models[1]: [1.0] * 6})
    (sentence,) = headline(_winrate(ans, models))
    assert sentence == (
        "sft is better than base: higher checkers +1.000 [+1.000, +1.000], no quality signal worse at 95%."
    )
