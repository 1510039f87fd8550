"""IFEval's instruction format (Zhou et al. 2023): the ids its verifiers know, and the
embedded tasks' constraints spelled as IFEval instructions. No torch, no verifier imports.

A row in IFEval's format carries `instruction_id_list` (ids such as
`change_case:english_lowercase`) and `kwargs` (one dict of arguments per id). The verifiers
themselves come from the `if-verifiable` package (`backends/worker/ifeval.py`); this module
is what the data layout, the preflight and the embedded generator need without loading them.

The embedded constraint kinds and their IFEval instructions:
  word_count at_most n      length_constraints:number_words  less than n + 1
  word_count at_least n     length_constraints:number_words  at least n
  sentence_count n          length_constraints:number_sentences  at least n, and less than n + 1
  bullet_count n            detectable_format:number_bullet_lists  n
  json_keys                 detectable_format:json_format (IFEval checks JSON, not the keys)
  include_words             keywords:existence
  exclude_words             keywords:forbidden_words
  keyword_frequency n       keywords:frequency  at least n
  lowercase / uppercase     change_case:english_lowercase / english_capital
  ends_with                 startend:end_checker
  no_commas                 punctuation:no_comma
  title                     detectable_format:title
IFEval has no instruction for `starts_with`, and its `number_paragraphs` counts `***`
dividers, not blank lines, so `paragraph_count` has none either: those two are judged by the
checkers alone.
"""

from __future__ import annotations

import json
from typing import Any

# IFEval's verifiers (if_verifiable.ifeval.instructions_registry.INSTRUCTION_DICT; a test
# keeps this list equal to the library's)
IDS: tuple[str, ...] = (
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "startend:quotation",
)
COLUMNS = ("instruction_id_list", "kwargs")  # what the `ifeval` reward and judge read from each row


def read_instructions(ids: Any, kwargs: Any, where: str) -> tuple[list[str], list[dict[str, Any]]]:
    """A row's ids and kwargs (a list of dicts, or its JSON text), or ValueError naming `where`,
    the value and what is expected."""
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where} `kwargs` is not JSON ({e.msg}): {kwargs[:80]!r}") from None
    if not (isinstance(ids, list | tuple) and all(isinstance(i, str) for i in ids)):
        raise ValueError(
            f"{where} `instruction_id_list` is {ids!r}, expected a list of IFEval instruction ids"
        )
    if not (isinstance(kwargs, list | tuple) and all(isinstance(k, dict | type(None)) for k in kwargs)):
        raise ValueError(f"{where} `kwargs` is {kwargs!r}, expected a list with one dict per instruction")
    if len(ids) != len(kwargs):
        raise ValueError(
            f"{where} has {len(ids)} instruction ids but {len(kwargs)} kwargs; expected one each"
        )
    unknown = [i for i in ids if i not in IDS]
    if unknown:
        raise ValueError(f"{where} has instruction ids IFEval does not know: {unknown}; known: {list(IDS)}")
    return list(ids), [dict(k or {}) for k in kwargs]


def from_constraint(kind: str, p: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """An embedded constraint as IFEval instructions (empty where IFEval has none)."""
    if kind == "word_count":
        if p["relation"] == "at_most":
            return [("length_constraints:number_words", {"relation": "less than", "num_words": p["n"] + 1})]
        return [("length_constraints:number_words", {"relation": "at least", "num_words": p["n"]})]
    if kind == "sentence_count":
        return [
            ("length_constraints:number_sentences", {"relation": "at least", "num_sentences": p["n"]}),
            ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": p["n"] + 1}),
        ]
    simple = {
        "bullet_count": lambda: ("detectable_format:number_bullet_lists", {"num_bullets": p["n"]}),
        "json_keys": lambda: ("detectable_format:json_format", {}),
        "include_words": lambda: ("keywords:existence", {"keywords": list(p["words"])}),
        "exclude_words": lambda: ("keywords:forbidden_words", {"forbidden_words": list(p["words"])}),
        "keyword_frequency": lambda: (
            "keywords:frequency",
            {"keyword": p["word"], "frequency": p["n"], "relation": "at least"},
        ),
        "lowercase": lambda: ("change_case:english_lowercase", {}),
        "uppercase": lambda: ("change_case:english_capital", {}),
        "ends_with": lambda: ("startend:end_checker", {"end_phrase": p["phrase"]}),
        "no_commas": lambda: ("punctuation:no_comma", {}),
        "title": lambda: ("detectable_format:title", {}),
    }
    return [simple[kind]()] if kind in simple else []


def embedded_columns(constraints: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """`instruction_id_list` and `kwargs` (as JSON text, one type for every row) for an
    embedded task's constraints, given as (kind, params) pairs."""
    pairs = [pair for kind, params in constraints for pair in from_constraint(kind, params)]
    return {"instruction_id_list": [i for i, _ in pairs], "kwargs": json.dumps([k for _, k in pairs])}
