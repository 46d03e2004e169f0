"""Personalised text: ``{{name}}``, ``{{phone}}`` and any column of the recipients CSV.

A template is compiled once, when the campaign is created: a variable that no
recipient can fill is an error then (``INVALID_MESSAGE``), never a literal
``{{typo}}`` in 100,000 customers' chats. A recipient that lacks a known
variable's value gets the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.api.errors import ApiError

_VAR = re.compile(r"\{\{\s*([^{}\s][^{}]*?)\s*\}\}")
BUILTIN = ("name", "phone")


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str, ...]  # literal, variable, literal, variable, ..., literal

    @property
    def variables(self) -> tuple[str, ...]:
        return self.parts[1::2]

    def render(self, values: Mapping[str, str | None]) -> str:
        if len(self.parts) == 1:
            return self.parts[0]
        out = []
        for i, part in enumerate(self.parts):
            out.append(part if i % 2 == 0 else (values.get(part) or ""))
        return "".join(out)


def compile_template(text: str) -> Template:
    return Template(tuple(_VAR.split(text)))


def check_known(templates: Iterable[Template], known: Iterable[str]) -> None:
    """INVALID_MESSAGE naming every variable that no recipient has a value for."""
    have = set(known) | set(BUILTIN)
    unknown = sorted({v for t in templates for v in t.variables} - have)
    if unknown:
        listed = ", ".join("{{" + v + "}}" for v in unknown)
        offer = ", ".join(sorted(have))
        raise ApiError("INVALID_MESSAGE", f"unknown template variable(s) {listed}: the recipients have only {offer}")
