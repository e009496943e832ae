"""Rendering a service's parameter template from a report's fields. Pure.

Only whole-field placeholders are supported: "{report.sample}" or "{report_id}". Nothing is
evaluated, so a report field can never inject an expression or another placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omicsflow.errors import InvalidReportError

PLACEHOLDER = re.compile(r"\{(report_id|report\.[A-Za-z0-9_]{1,64})\}")


def render_parameters(
    template: Mapping[str, Any], report_id: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    def value_of(name: str) -> Any:
        if name == "report_id":
            return report_id
        key = name.removeprefix("report.")
        if key not in fields or fields[key] in (None, ""):
            raise InvalidReportError(f"the report has no '{key}' field, which the service needs")
        return fields[key]

    def render(value: Any) -> Any:
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole:  # keep the field's own type (numbers stay numbers)
                return value_of(whole.group(1))
            return PLACEHOLDER.sub(lambda m: str(value_of(m.group(1))), value)
        if isinstance(value, Mapping):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    return {k: render(v) for k, v in template.items()}
