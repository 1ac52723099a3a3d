"""The effects of a routing change: pure comparison of two compiled tables, no rendering.

`types` holds the frozen results, `compare` the comparators that fill a TableDiff, `warnings` the
single-table lints and which of them a change introduces. Exported here: what other modules use.
"""

from __future__ import annotations

from routectl.review.effects.compare import compare, empty_table
from routectl.review.effects.types import MemberShare, TableDiff, TrafficChange

__all__ = ["MemberShare", "TableDiff", "TrafficChange", "compare", "empty_table"]
