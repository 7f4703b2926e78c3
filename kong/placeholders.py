"""`${NAME}` placeholders of kong.yml, filled in the parsed tree so a multi-line value (a PEM) can't break the YAML."""

from __future__ import annotations

import re
from typing import Any

from kong.errors import RenderError

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def fill(node: Any, values: dict[str, str]) -> Any:
    """Replace `${NAME}` in every string of the parsed YAML tree; an unknown placeholder is an error."""
    if isinstance(node, dict):
        return {k: fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if isinstance(node, str):
        missing = [name for name in PLACEHOLDER.findall(node) if name not in values]
        if missing:
            raise RenderError(f"no value for placeholder(s) {', '.join(missing)}")
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], node)
    return node
