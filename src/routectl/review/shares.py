"""Expected steady-state traffic shares: the rule lives in the runtime (the dashboard shows it too)."""

from __future__ import annotations

from routectl.runtime.shares import SPLIT_STRATEGIES, Basis, expected_shares, member_key

__all__ = ["SPLIT_STRATEGIES", "Basis", "expected_shares", "member_key"]
