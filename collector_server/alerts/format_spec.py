"""Bounds on the format specs of annotation templates (``{value:>10.2f}``).

A width or precision is capped at ``MAX_FORMAT_WIDTH``: validation refuses more, and rendering
clamps what slipped through (a nested spec such as ``{value:>{width}}`` filled from a label),
so a template can never ask for a string hundreds of megabytes long.
"""

from __future__ import annotations

import re

MAX_FORMAT_WIDTH = 64
# [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(
    r"^(?P<head>(?:.?[<>=^])?[+\- ]?z?#?0?)(?P<width>\d*)(?P<group>[,_]?)(?:\.(?P<precision>\d+))?(?P<type>[a-zA-Z%]?)$",
    re.DOTALL,
)


def too_wide(spec: str) -> str:
    """Return a message when a spec's width or precision exceeds the cap, else ""."""
    match = _SPEC.match(spec)
    if match is None:
        return ""
    for part in ("width", "precision"):
        if match[part] and int(match[part]) > MAX_FORMAT_WIDTH:
            return f"format {part} {int(match[part])} in {{…:{spec}}} is over the limit of {MAX_FORMAT_WIDTH}"
    return ""


def clamp(spec: str) -> str:
    """Return the spec with its width and precision capped at MAX_FORMAT_WIDTH."""
    match = _SPEC.match(spec)
    if match is None:
        return spec
    width = match["width"] and str(min(int(match["width"]), MAX_FORMAT_WIDTH))
    precision = match["precision"] and f".{min(int(match['precision']), MAX_FORMAT_WIDTH)}"
    return f"{match['head']}{width}{match['group']}{precision or ''}{match['type']}"
