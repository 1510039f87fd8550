"""Judges for comparisons: each turns (prompt, answer of A, answer of B) into an outcome for
A (1 win, 0.5 tie, 0 loss).

Score judges (the embedded checkers, a reward-model run, a function) score each answer
and compare the scores with a tie margin. The LLM judge (AI feedback) asks an instruct
model which answer is better, once in each order to cancel position bias, and reads the
probabilities of the tokens "A" and "B". People judge through the Label tab.
"""

from __future__ import annotations

from typing import Any

from backends.core.data.formats import text_of
from backends.core.reports.comparison import outcome_from_scores
from backends.core.spec.params import JudgeSpec, RewardSpec
from backends.worker.rewards import build_reward

JUDGE_PROMPT = (
    "You compare two answers to an instruction. Reply with the single letter of the better answer "
    "(the one that follows every part of the instruction).\n\nInstruction:\n{prompt}\n\nAnswer A:\n{a}\n\n"
    "Answer B:\n{b}\n\nWhich answer is better, A or B?"
)


class ScoreJudge:
    kind = "score"

    def __init__(self, spec: JudgeSpec) -> None:
        self.margin = spec.tie_margin
        self.fn = build_reward(RewardSpec(kind=spec.kind, path=spec.path))  # type: ignore[arg-type]

    def score(self, prompts: list[Any], answers: list[str], extra: dict[str, list[Any]]) -> list[float]:
        conv = [
            [{"role": "assistant", "content": a}] if isinstance(p, list) else a
            for p, a in zip(prompts, answers, strict=True)
        ]
        return [float(s) for s in self.fn(prompts, conv, **extra)]

    def details(self) -> list[dict[str, Any]] | None:
        """Per answer of the last `score` call, what the judge saw beyond the score (IFEval's
        four scores and each instruction's result); None for judges that give only a score."""
        return getattr(self.fn, "last", None)


class LLMJudge:
    """Pairwise verdicts from an instruct model's next-token probabilities of A vs B."""

    kind = "pairwise"

    def __init__(self, spec: JudgeSpec, device: str, attn: str) -> None:
        import torch

        from backends.core.spec.config import EMBEDDED_MODEL, ModelConfig
        from backends.worker.models import load_causal_lm, load_tokenizer

        cfg = ModelConfig(name_or_path=spec.path or EMBEDDED_MODEL)
        self.tok = load_tokenizer(cfg)
        self.model = load_causal_lm(cfg, attn).to(device).eval()
        self.margin = spec.tie_margin
        self.ids = [self._letter_id(x) for x in ("A", "B")]
        self.torch = torch

    def _letter_id(self, letter: str) -> int:
        ids = self.tok.encode(letter, add_special_tokens=False)
        return ids[0]

    def _p_first(self, prompt: str, a: str, b: str) -> float:
        msgs = [{"role": "user", "content": JUDGE_PROMPT.format(prompt=prompt, a=a, b=b)}]
        enc = self.tok.apply_chat_template(
            msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with self.torch.no_grad():
            logits = self.model(**enc.to(self.model.device)).logits[0, -1, self.ids].float()
        return float(self.torch.softmax(logits, -1)[0])

    def compare(self, prompt: Any, a: str, b: str) -> tuple[float, float]:
        """(outcome for A, P(A better) averaged over both orders)."""
        text = text_of(prompt)
        p = 0.5 * (self._p_first(text, a, b) + (1.0 - self._p_first(text, b, a)))
        return outcome_from_scores(p, 0.5, self.margin), p


def build_judge(spec: JudgeSpec, device: str, attn: str) -> ScoreJudge | LLMJudge:
    return LLMJudge(spec, device, attn) if spec.kind == "llm" else ScoreJudge(spec)
