"""The Train form's widgets, built from `studio.logic.forms.form_fields()`: main fields per
section in rows, the rest in a "More settings" accordion, each section in a box that hides
when the chosen method uses none of its fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.logic import forms

PER_ROW = 4


@dataclass
class Form:
    fields: list[gr.components.Component]  # in form_fields() order
    by_key: dict[str, gr.components.Component]
    boxes: list[tuple[gr.Column, list[forms.FormField]]]  # a section's box and its fields

    def on_method(self, method: str) -> list[Any]:
        """Updates for every field, then every box, when the method changes."""
        fields = [gr.update(visible=f.visible(method)) for f in forms.form_fields()]
        boxes = [gr.update(visible=any(f.visible(method) for f in fs)) for _, fs in self.boxes]
        return fields + boxes

    @property
    def containers(self) -> list[gr.Column]:
        return [box for box, _ in self.boxes]


def widget(field: forms.FormField, value: Any, method: str) -> gr.components.Component:
    common: dict[str, Any] = dict(
        label=field.label,
        info=field.info or None,
        elem_id="field-" + field.key.replace(".", "-"),
        visible=field.visible(method),
    )
    if field.kind == "yaml":
        return gr.Textbox(value=value, lines=1, **common)
    if field.kind == "bool":
        return gr.Checkbox(value=value, **common)
    if field.kind == "choice":
        return gr.Dropdown(list(field.choices), value=value, **common)
    if field.kind in ("int", "number"):
        return gr.Number(value=value, precision=0 if field.kind == "int" else None, **common)
    return gr.Textbox(value=value, **common)


def _sections(fields: list[forms.FormField]) -> dict[str, list[forms.FormField]]:
    out: dict[str, list[forms.FormField]] = {}
    for f in fields:
        out.setdefault(f.section, []).append(f)
    return out


def build_form(values: list[Any]) -> Form:
    all_fields = forms.form_fields()
    value_of = dict(zip([f.key for f in all_fields], values, strict=True))
    method = values[0]
    made: dict[str, gr.components.Component] = {}
    boxes: list[tuple[gr.Column, list[forms.FormField]]] = []

    def rows(fs: list[forms.FormField]) -> None:
        for i in range(0, len(fs), PER_ROW):
            with gr.Row():
                for f in fs[i : i + PER_ROW]:
                    made[f.key] = widget(f, value_of[f.key], method)

    for section, fs in _sections([f for f in all_fields if f.main]).items():
        visible = any(f.visible(method) for f in fs)
        with gr.Column(visible=visible, elem_id=f"form-{section or 'run'}") as box:
            rows(fs)
        boxes.append((box, fs))
    with gr.Accordion("More settings", open=False, elem_id="form-more"):
        for section, fs in _sections([f for f in all_fields if not f.main]).items():
            visible = any(f.visible(method) for f in fs)
            with gr.Column(visible=visible, elem_id=f"form-more-{section}") as box:
                gr.Markdown(f"**{fs[0].group}**")
                rows(fs)
            boxes.append((box, fs))
    return Form([made[f.key] for f in all_fields], made, boxes)
