"""The naming rules of routing.yaml that checks and lowering share."""

from __future__ import annotations

__all__ = ["RESERVED_HANDLES", "RESERVED_NAMES", "split_member_model"]

# `collection/NAME` and `auto(x)` are resolved before any provider, collection or handle name;
# a handle may not be `platform` either, the owner of shared connections.
RESERVED_NAMES = frozenset({"collection", "auto"})
RESERVED_HANDLES = RESERVED_NAMES | {"platform"}


def split_member_model(text: str) -> tuple[str | None, str]:
    """("handle" or None, "provider/model") of a member's `model` string."""
    parts = text.split("/", 2)
    if len(parts) == 3:
        return parts[0], f"{parts[1]}/{parts[2]}"
    return None, text
