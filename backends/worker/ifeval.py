"""IFEval's own instruction verifiers, as a reward (`kind: ifeval`) and a judge.

The verifiers come from `if-verifiable` (IFEval's and IFBench's instruction code, packaged
with few dependencies), chosen over lm-evaluation-harness's `ifeval` task because it installs
alone and gives each instruction's strict and loose result; harness would bring its whole
evaluation stack for four files. Scores, as IFEval reports them:
  prompt-level strict / loose: 1 when every instruction of the row is met, else 0
  instruction-level strict / loose: the share of the row's instructions met
Loose checks also try the answer without its first and/or last line and without `*`.

Sentence counts: IFEval counts sentences with NLTK's trained Punkt model for English, which
ships as NLTK data, a download this machine cannot make. Where it is not installed, the
verifiers get NLTK's own Punkt algorithm with no learned parameters (empty tables under the
studio's cache): sentences end at `.`, `!`, `?` as in the trained model, but abbreviations
("Dr.", "e.g.") are not known and end a sentence. It touches
`length_constraints:number_sentences` and `change_case:capital_word_frequency` (whose word
tokenizer splits sentences first); the log says so once per process.

Language: the case and language verifiers ask `langdetect`, which samples; its seed is fixed
here so one answer always gets one verdict (IFEval's code leaves it unseeded). langdetect
often takes all-capital English for another language, so `change_case:english_capital`
fails answers the checkers pass: the agreement the eval stage reports shows how often.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

from backends.core.data.formats import text_of
from backends.core.spec.places import cache_dir
from backends.core.tasks.ifeval import read_instructions

PUNKT_TABLES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


def _installed(nltk: Any, resource: str) -> bool:
    """Whether NLTK finds `resource` (its `find` raises LookupError for a missing one)."""
    try:
        nltk.data.find(resource)
    except LookupError:
        return False
    return True


@lru_cache(maxsize=1)
def ensure_ready() -> str:
    """Seeds langdetect; returns 'trained' when NLTK's English Punkt model is installed, else
    installs the untrained stand-in (once), says so on stderr and returns 'untrained'."""
    import langdetect
    import nltk

    langdetect.DetectorFactory.seed = 0

    if _installed(nltk, "tokenizers/punkt_tab/english"):
        return "trained"
    root = cache_dir() / "nltk_data"
    folder = root / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PUNKT_TABLES:
        (folder / name).touch()
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    print(
        "ifeval: NLTK's trained Punkt model is not installed; sentence counts use Punkt with no "
        "learned abbreviations (length_constraints:number_sentences, change_case:capital_word_frequency)",
        file=sys.stderr,
        flush=True,
    )
    return "untrained"


def verify(prompt: Any, answer: str, ids: Any, kwargs: Any, where: str = "a row") -> dict[str, Any]:
    """IFEval's four scores for one answer, and each instruction's strict / loose result.
    A row without instructions gets None scores (nothing to verify)."""
    from if_verifiable.common import evaluate_instructions
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    ensure_ready()
    ids, kwargs = read_instructions(ids, kwargs, where)
    if not ids:
        return {**dict.fromkeys(METRICS), "instructions": []}
    results, scores = evaluate_instructions(
        response=answer,
        instruction_id_list=ids,
        kwargs_list=kwargs,
        prompt=text_of(prompt),
        instruction_registry=INSTRUCTION_DICT,
    )
    return {
        "prompt_strict": scores.binary_strict,
        "prompt_loose": scores.binary_loose,
        "instruction_strict": scores.partial_strict,
        "instruction_loose": scores.partial_loose,
        # an empty answer is scored 0 without running the verifiers: each instruction failed
        "instructions": [
            {"id": r.instruction_id, "strict": r.strict_pass, "loose": r.loose_pass} for r in results
        ]
        or [{"id": i, "strict": False, "loose": False} for i in ids],
    }


class IFEvalReward:
    """TRL's reward signature: the share of the row's IFEval instructions the completion meets
    (instruction-level; strict by default). Rows need `instruction_id_list` and `kwargs`."""

    def __init__(self, loose: bool = False) -> None:
        self.metric = "instruction_loose" if loose else "instruction_strict"
        self.__name__ = "ifeval"
        self.last: list[dict[str, Any]] = []  # the details of the last call (the eval stage reports them)

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        instruction_id_list: list[Any] | None = None,
        kwargs: list[Any] | None = None,
        **_: Any,
    ) -> list[float]:
        if instruction_id_list is None or kwargs is None:
            raise ValueError(
                "the `ifeval` reward needs the columns `instruction_id_list` and `kwargs` (IFEval's format; "
                "the embedded tasks have them)"
            )
        self.last = [
            verify(p, text_of(c), ids, kw, f"row {i + 1}")
            for i, (p, c, ids, kw) in enumerate(
                zip(prompts, completions, instruction_id_list, kwargs, strict=True)
            )
        ]
        # a row with no IFEval instruction has nothing to verify: 0, as IFEval's own code scores it
        return [d[self.metric] or 0.0 for d in self.last]


class IFEvalTally:
    """IFEval's four scores per model over a comparison, and how often the checkers and the
    verifiers agree that an answer meets every constraint (rows judged both ways)."""

    def __init__(self) -> None:
        self.scores: dict[str, list[dict[str, Any]]] = {}
        self.agree = [0, 0]  # answers where both judged all-met the same way, answers judged both ways

    def add(self, model: str, details: list[dict[str, Any]], checkers: list[float] | None) -> None:
        for i, d in enumerate(details):
            if d["prompt_strict"] is None:
                continue  # no IFEval instruction in this row
            self.scores.setdefault(model, []).append({m: d[m] for m in METRICS})
            if checkers is not None:
                self.agree[0] += (checkers[i] == 1.0) == (d["prompt_strict"] == 1.0)
                self.agree[1] += 1

    def summary(self) -> dict[str, Any]:
        models = {
            m: {"n": len(rows), **{k: round(sum(r[k] for r in rows) / len(rows), 4) for k in METRICS}}
            for m, rows in self.scores.items()
        }
        out: dict[str, Any] = {"models": models, "sentence_model": ensure_ready()}
        if self.agree[1]:
            out["agreement_with_checkers"] = {
                "share": round(self.agree[0] / self.agree[1], 4),
                "n": self.agree[1],
            }
        return out
