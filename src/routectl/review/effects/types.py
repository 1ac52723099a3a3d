"""What a routing change does, as frozen values: one dataclass per kind of effect, gathered in TableDiff."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from routectl.review.shares import Basis

__all__ = [
    "AccessChange",
    "Alert",
    "CapabilityChange",
    "Change",
    "CollectionChange",
    "ConnectionChange",
    "FirstChoiceChange",
    "LimitChange",
    "MemberShare",
    "OtherChange",
    "SettingChange",
    "StrategyChange",
    "TableDiff",
    "TrafficChange",
]

Change = Literal["added", "removed", "changed", "unchanged"]


@dataclass(frozen=True, slots=True)
class Alert:
    kind: Literal["below_min_models", "falls_to_platform_keys", "capability_lost"]
    subject: str
    message: str


@dataclass(frozen=True, slots=True)
class AccessChange:
    kind: Literal["user", "organization"]
    subject: str
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    joined: tuple[str, ...] = ()  # organizations joined (user) / members added (organization)
    left: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CollectionChange:
    name: str
    change: Literal["added", "removed"]
    scope: str
    owner: str | None
    strategy: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettingChange:
    collection: str
    setting: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class OtherChange:
    """A change outside collections that still moves traffic or access: a model's context window
    or price, the defaults, a user's keys, a connection's URL, key variable or upstream names."""

    subject: str  # "model echo/echo-1", "defaults", "user sam-solo", "connection acme-groq"
    setting: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class MemberShare:
    member: str
    change: Change
    share_before: float | None  # None: not a member on that side
    share_after: float | None
    details: tuple[str, ...] = ()  # e.g. "weight 0.5 -> 0.7", "deactivated"


@dataclass(frozen=True, slots=True)
class TrafficChange:
    collection: str
    strategy_before: str | None
    strategy_after: str | None
    basis_before: Basis | None
    basis_after: Basis | None
    members: tuple[MemberShare, ...]


@dataclass(frozen=True, slots=True)
class StrategyChange:
    collection: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    connection: str
    owner: str
    change: Literal["added", "removed", "priority", "models"]
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class FirstChoiceChange:
    user: str
    model: str
    before: str | None  # connection id; None: the user could not use the model
    after: str | None


@dataclass(frozen=True, slots=True)
class LimitChange:
    """One limit of a caller or collection set, changed or lifted (`limits` in routing.yaml)."""

    kind: Literal["user", "organization", "collection"]
    subject: str
    limit: str  # requests_per_minute, tokens_per_minute, usd_per_day, usd_per_month or fail
    before: Any  # None: not limited on it
    after: Any


@dataclass(frozen=True, slots=True)
class CapabilityChange:
    collection: str
    lost: tuple[str, ...]
    gained: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TableDiff:
    """Every effect, grouped; each group sorted so output is deterministic."""

    base_sha: str
    head_sha: str
    warnings: tuple[Alert, ...] = ()
    access: tuple[AccessChange, ...] = ()
    collections: tuple[CollectionChange, ...] = ()
    traffic: tuple[TrafficChange, ...] = ()
    strategies: tuple[StrategyChange, ...] = ()
    settings: tuple[SettingChange, ...] = ()
    connections: tuple[ConnectionChange, ...] = ()
    first_choices: tuple[FirstChoiceChange, ...] = ()
    capabilities: tuple[CapabilityChange, ...] = ()
    others: tuple[OtherChange, ...] = ()
    limits: tuple[LimitChange, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when the change has no effect a reviewer would see."""
        groups = (
            self.warnings,
            self.access,
            self.collections,
            self.traffic,
            self.strategies,
            self.settings,
            self.connections,
            self.first_choices,
            self.capabilities,
            self.others,
            self.limits,
        )
        return not any(groups)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready data of the same effects the Markdown shows."""
        data = asdict(self)
        data.pop("extra")
        data["empty"] = self.is_empty()
        rounded: dict[str, Any] = _round_floats(data)
        return rounded


def _round_floats(value: Any) -> Any:
    # 0.7/(0.7+0.3) is 0.7000000000000001 in binary; reviewers read six decimals
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round_floats(v) for v in value]
    return value
