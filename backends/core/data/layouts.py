"""Named layouts of the data people bring, each read into TRL's dataset formats. No torch.

A layout names the fields of a common public layout (Alpaca's instruction / input / output,
ShareGPT's `conversations` of `{from, value}`, ...) and converts one row of it into TRL's
columns (https://huggingface.co/docs/trl/dataset_formats). `data.columns` maps a layout's
field to the user's column, so a file is trained as it is; the reference design is
LLaMA-Factory's per-dataset `formatting` + `columns` (dataset_info.json). `trl` is TRL's own
formats, normalized: conversations in any spelling, typed content flattened to text, and
`chosen` / `rejected` conversations that repeat the prompt read as an implicit-prompt pair.
Named layouts yield conversational rows, rendered by the model's chat template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backends.core.data.layout_readers import (  # noqa: F401 - the readers the table names; dataplan.py imports the rest from here
    TRL_COLUMNS,
    Cells,
    Row,
    alpaca,
    dolly,
    hh,
    ifeval,
    preference,
    sharegpt,
    shp,
    trl,
    trl_format,
)
from backends.core.spec.layout_fields import FIELDS, LayoutName  # noqa: F401 - LayoutName re-exported for the Data tab


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    convert: Callable[[Cells], Row]
    reads: dict[str, str]  # field -> what it becomes, for the Data tab
    scores: tuple[str, str] | None = None  # (chosen-side, rejected-side) score fields

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


PAIR_READS = {"prompt": "the prompt", "chosen": "the chosen answer", "rejected": "the rejected answer"}
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "sharegpt",
            "ShareGPT",
            *FIELDS["sharegpt"],
            sharegpt,
            {
                "conversations": "`messages` (human -> user, gpt -> assistant, observation -> tool)",
                "system": "a system turn first",
                "chosen": "the chosen turn (prompt = the conversation)",
                "rejected": "the rejected turn",
            },
        ),
        Layout(
            "hh",
            "HH-RLHF transcripts",
            *FIELDS["hh"],
            hh,
            {"chosen": "Human/Assistant turns; the shared turns become the prompt", "rejected": "the same"},
        ),
        Layout(
            "shp",
            "SHP (paired ratings)",
            *FIELDS["shp"],
            shp,
            {
                "history": "the prompt (a user turn)",
                "labels": "which answer is chosen (1: A, 0: B)",
                "human_ref_A": "answer A",
                "human_ref_B": "answer B",
                "score_A": "A's score (for the score gap)",
                "score_B": "B's score",
            },
            scores=("score_A", "score_B"),
        ),
        Layout(
            "dolly",
            "Dolly",
            *FIELDS["dolly"],
            dolly,
            {
                "instruction": "the user turn of `prompt`",
                "context": "appended to the user turn",
                "response": "`completion` (an assistant turn)",
            },
        ),
        Layout(
            "alpaca",
            "Alpaca",
            *FIELDS["alpaca"],
            alpaca,
            {
                "instruction": "the user turn of `prompt`",
                "input": "appended to the user turn",
                "output": "`completion` (an assistant turn)",
                "system": "a system turn first",
                "history": "earlier [user, assistant] turns",
            },
        ),
        Layout(
            "ifeval",
            "IFEval (verifiable instructions)",
            *FIELDS["ifeval"],
            ifeval,
            {
                "prompt": "the user turn of `prompt`",
                "instruction_id_list": "the instructions IFEval's verifiers check (`kind: ifeval`)",
                "kwargs": "each instruction's arguments",
            },
        ),
        Layout(
            "ultrafeedback",
            "UltraFeedback (binarized)",
            *FIELDS["ultrafeedback"],
            preference,
            {
                **PAIR_READS,
                "chosen": "the chosen answer (its copy of the prompt turns is dropped)",
                "score_chosen": "the chosen answer's score (for the score gap)",
                "score_rejected": "the rejected answer's score",
            },
            scores=("score_chosen", "score_rejected"),
        ),
        Layout(
            "trl",
            "TRL format",
            *FIELDS["trl"],
            trl,
            {
                **PAIR_READS,
                "completion": "the completion",
                "label": "desirable (true) or not",
                "text": "the text",
                "messages": "the conversation",
            },
        ),
    )
}
