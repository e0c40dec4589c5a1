"""The approved WhatsApp templates: what the office may say outside the 24-hour window.

Each template is registered with Meta once (category ``UTILITY``, language ``id``) under a
name; the office can rename them (``ADMINDUK_WHATSAPP_TEMPLATES``). Its body has numbered
parameters (``{{1}}``, ``{{2}}``...) filled from typed values; ``docs/TEMPLATES.md`` lists
every template as it must be registered and is generated from this catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from services.notify.domain.outbound import TemplateCall

_PLACEHOLDER: Final = re.compile(r"\{\{(\d+)\}\}")


@dataclass(frozen=True)
class TemplateSpec:
    """One approved template: catalogue ``key``, default ``name``, the ``body`` as
    registered, what each parameter is (``parameters``, in order), and whether it has a
    document header (a letter)."""

    key: str
    name: str
    body: str
    parameters: tuple[str, ...]
    document_header: bool = False
    category: str = "UTILITY"

    def __post_init__(self) -> None:
        numbers = sorted({int(n) for n in _PLACEHOLDER.findall(self.body)})
        if numbers != list(range(1, len(self.parameters) + 1)):
            raise ValueError(f"template {self.key}: placeholders {numbers} do not match")

    def call(self, *values: str) -> TemplateCall:
        """A call of this template with ``values`` for its parameters, in order."""
        if len(values) != len(self.parameters):
            raise ValueError(
                f"template {self.key} takes {len(self.parameters)} parameters, not {len(values)}"
            )
        return TemplateCall(
            key=self.key,
            parameters=tuple(" ".join(value.split()) for value in values),
            document_header=self.document_header,
        )

    def render(self, parameters: tuple[str, ...] | list[str]) -> str:
        """The text the citizen reads: the body with the parameters filled in."""
        return _PLACEHOLDER.sub(lambda match: parameters[int(match.group(1)) - 1], self.body)


TEMPLATES: Final[Mapping[str, TemplateSpec]] = {}
"""Every template, by key. Filled by the catalogue below."""


def template_name(key: str, overrides: Mapping[str, str]) -> str:
    """The name Meta approved for template ``key`` at this office."""
    return overrides.get(key) or TEMPLATES[key].name


def by_name(overrides: Mapping[str, str]) -> dict[str, TemplateSpec]:
    """The templates by their approved names (as the Cloud API, or its simulator, knows
    them)."""
    return {template_name(key, overrides): spec for key, spec in TEMPLATES.items()}
