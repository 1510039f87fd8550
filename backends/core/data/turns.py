"""Conversations as people store them, read into TRL's `{role, content}` turns. No torch.

The same chat is written many ways: `{role, content}` (TRL, OpenAI), `{from, value}` with
ShareGPT's role names (human, gpt, function_call, observation), content as a list of typed
parts (`[{"type": "text", "text": ...}]`), or one transcript string (HH-RLHF's
"\\n\\nHuman: ... \\n\\nAssistant: ..."). Everything here returns plain turns whose content is
text, or raises `RowError` naming the column, the row and what was expected. The studio trains
text-only models, so an image or audio part is refused by its type rather than dropped.
"""

from __future__ import annotations

import re
from typing import Any

# ShareGPT / LLaMA-Factory role names -> the roles chat templates know.
ROLE_NAMES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "function": "tool",
    "tool": "tool",
}
NON_TEXT_PARTS = ("image", "image_url", "input_image", "audio", "input_audio", "video", "file")
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


class RowError(ValueError):
    """A row that cannot be read in its layout: names the column, the row and what is expected."""


def is_turn(value: Any) -> bool:
    return isinstance(value, dict) and (("role" in value and "content" in value) or "from" in value)


def is_conversation(value: Any) -> bool:
    """A non-empty list of turns, in either spelling."""
    return isinstance(value, list) and len(value) > 0 and all(is_turn(m) for m in value)


def content_text(content: Any, where: str) -> str:
    """A turn's content as text: a string, or the text parts of a typed list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
                continue
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in NON_TEXT_PARTS or (kind is None and isinstance(part, dict) and "text" not in part):
                raise RowError(
                    f"{where}: content part {i} is of type `{kind or sorted(part)}`; the studio trains "
                    "text-only models, so remove image/audio parts (or these rows) first"
                )
            if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                raise RowError(f"{where}: content part {i} is {part!r}, expected {{type: text, text: ...}}")
            texts.append(part["text"])
        return "".join(texts)
    raise RowError(f"{where}: content is {type(content).__name__} {content!r}, expected text or typed parts")


def read_turns(value: Any, where: str) -> list[dict[str, str]]:
    """A conversation in any spelling as `[{role, content}]` with text content."""
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else f"{type(value).__name__} {str(value)[:60]!r}"
        raise RowError(f"{where} is {got}, expected a conversation (a list of {{role, content}} turns)")
    turns = []
    for i, m in enumerate(value):
        if not is_turn(m):
            raise RowError(
                f"{where} turn {i} is {str(m)[:80]!r}, expected {{role, content}} or {{from, value}}"
            )
        name = m["role"] if "role" in m else m.get("from")
        role = ROLE_NAMES.get(str(name).lower()) if isinstance(name, str) else None
        if role is None:
            raise RowError(f"{where} turn {i} has role {name!r}; known roles: {', '.join(ROLE_NAMES)}")
        content = m["content"] if "role" in m else m.get("value")
        turns.append({"role": role, "content": content_text(content, f"{where} turn {i}")})
    return turns


def read_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise RowError(f"{where} is {type(value).__name__} {str(value)[:60]!r}, expected text")


def parse_transcript(text: Any, where: str) -> list[dict[str, str]]:
    """An HH-RLHF transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...") as turns."""
    text = read_text(text, where)
    parts = _HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        raise RowError(f'{where} does not start with "\\n\\nHuman: " (an HH-RLHF transcript): {text[:60]!r}')
    role = {"Human": "user", "Assistant": "assistant"}
    return [{"role": role[parts[i]], "content": parts[i + 1]} for i in range(1, len(parts), 2)]


def looks_like_transcript(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("\n\nHuman:") and "\n\nAssistant:" in value


def split_prompt(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]], where: str
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """(prompt, chosen, rejected) from two conversations that repeat their prompt turns: the
    prompt is the turns they share, up to the answer where they part."""
    if chosen == rejected:
        raise RowError(f"{where}: `chosen` and `rejected` are the same conversation")
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and chosen[n - 1]["role"] == "assistant":
        n -= 1  # the prompt ends where an answer would start
    if n == 0:
        raise RowError(f"{where}: `chosen` and `rejected` share no prompt turns and there is no `prompt`")
    return chosen[:n], chosen[n:], rejected[n:]


def strip_prompt(prompt: list[dict[str, str]], answer: list[dict[str, str]]) -> list[dict[str, str]] | None:
    """`answer` without its leading copy of `prompt` (None when it does not repeat it)."""
    if len(answer) > len(prompt) and answer[: len(prompt)] == prompt:
        return answer[len(prompt) :]
    return None
