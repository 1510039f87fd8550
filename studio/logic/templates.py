"""Chat templates as training renders them, without torch: the template saved with a
tokenizer, rendered by transformers' own renderer (`transformers.utils.chat_template_utils`
imports without torch), so the Data tab shows exactly what the trainer will tokenize."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


@dataclass(frozen=True)
class ChatTemplate:
    """A model's chat template, rendered by transformers' own renderer (it imports without
    torch): the same sandbox, filters (`tojson`), globals (`raise_exception`, `strftime_now`),
    loop controls and special-token variables as `tokenizer.apply_chat_template` in training."""

    text: str
    special_tokens: dict[str, str]

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            conversations=[messages],
            chat_template=self.text,
            add_generation_prompt=add_generation_prompt,
            **self.special_tokens,
        )
        return rendered[0]


def load_template(tokenizer_dir: Path | None) -> ChatTemplate | None:
    """The chat template saved with a tokenizer (chat_template.jinja or tokenizer_config.json)."""
    if tokenizer_dir is None:
        return None
    config_file = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    text = config.get("chat_template")
    if (tokenizer_dir / "chat_template.jinja").exists():
        text = (tokenizer_dir / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(text, list):  # named templates: [{"name": "default", "template": ...}, ...]
        text = next((t.get("template") for t in text if t.get("name") == "default"), None)
    if not text:
        return None
    special = {}
    for key in SPECIAL_TOKENS:
        value = config.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            special[key] = value
    return ChatTemplate(text, special)
