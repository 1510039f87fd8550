"""What one browser of the Label tab is labeling, the order its answers are shown in, and
the progress line. Pure functions over the label store; no gradio import."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from backends.core.labels.ranking import LETTERS
from backends.core.labels.store import Item, LabelStore, Progress, Session
from studio.logic.labeling import message_text

NOTHING_LEFT = "**Nothing left for you to label in this session.** Export below, or pick another session."


@dataclass
class LabelState:
    """One browser's session and the item it shows. Everything else (votes, skips, who holds
    which item) is in the store, so a reload or a second browser picks up where it was."""

    session_id: int | None = None
    kind: str = "pair"
    k: int = 1
    item_id: int | None = None
    shown: list[int] = field(default_factory=list)  # pair: [left, right]; ranking: answers A, B, ...
    answers_on: int = 0  # answer boxes the page shows now (a ranking item of another K changes them)

    @property
    def left(self) -> int:
        return self.shown[0]

    @property
    def right(self) -> int:
        return self.shown[1]

    def open(self, session: Session | None) -> None:
        self.session_id = session.id if session else None
        self.kind = session.kind if session else "pair"
        self.k = session.votes_per_item if session else 1
        self.item_id, self.shown = None, []

    def advance(self, store: LabelStore, annotator: str) -> Item | None:
        """The item the store serves this annotator next (held for them), in a random order."""
        item = store.next_item(self.session_id, annotator) if self.session_id is not None else None
        self.put(item, annotator)
        return item

    def put(self, item: Item | None, annotator: str, shown: list[int] | None = None) -> None:
        self.item_id = item.id if item else None
        self.shown = (shown or shown_order(item, self.kind, annotator)) if item else []


def shown_order(item: Item, kind: str, annotator: str) -> list[int]:
    """Random, but the same for one annotator and item: a reload shows the same sides."""
    rng = random.Random(f"{annotator}:{item.id}")
    if kind == "pair":
        return list(LabelStore.pair_order(item, rng))
    order = list(range(len(item.responses)))
    rng.shuffle(order)
    return order


def answer_texts(item: Item, shown: list[int]) -> list[str]:
    """A ranking item's answers under their letters, in the shown order."""
    return [f"### {LETTERS[pos]}\n\n{message_text(item.responses[r])}" for pos, r in enumerate(shown)]


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def progress_text(p: Progress, annotator: str, k: int) -> str:
    """`alice`: 12 labeled · session: 40 of 450 complete, 6 in progress ... ETA."""
    mine = f"**{annotator}**: {p.mine} of {p.items} labeled" + (
        f", {p.my_skips} skipped" if p.my_skips else ""
    )
    team = (
        f"session ({k} {'person' if k == 1 else 'people'} per item): {p.complete} of {p.items} complete, "
        f"{p.in_progress} in progress, {p.remaining} remaining"
    )
    if p.complete == p.items:
        eta = "all done"
    elif p.pace_per_hour is None or p.eta_seconds is None:
        eta = "ETA once a few labels are in"
    else:
        eta = f"{p.pace_per_hour:.0f} labels/hour lately, {p.labels_needed} to go: {duration(p.eta_seconds)}"
    return f"{mine} · {team} · {eta}"


def session_label(s: Session) -> str:
    """A session in the picker: `name (N items)`, plus how it is labeled when not the default."""
    extra = ("ranking" if s.kind == "ranking" else "") + (
        f", {s.votes_per_item} per item" if s.votes_per_item > 1 else ""
    )
    return f"{s.name} ({s.items} items{', ' + extra.lstrip(', ') if extra else ''})"


def default_session(store: LabelStore, annotator: str | None) -> int | None:
    """What a freshly loaded page opens: where this login labeled last, else the newest session."""
    sessions = store.sessions()
    known = {s.id for s in sessions}
    last = store.last_session(annotator) if annotator else None
    if last in known:
        return last
    return sessions[-1].id if sessions else None
