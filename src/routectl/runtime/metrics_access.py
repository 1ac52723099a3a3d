"""Who may read which metrics series.

`serve --metrics-token TOKEN` (ROUTECTL_METRICS_TOKEN): /metrics needs `Authorization: Bearer
TOKEN` and then shows every series. Without a token configured, /metrics is open and shows only
the public series: a series is public when each of its labels is

- one that names nothing of a tenant (`route`, `status`, `result`, `reason`, `phase`, `sha256`,
  `le`, `quantile`, `strategy`, `api`), or
- `connection` naming a platform connection, `model` naming a model some platform connection
  serves, `collection` naming a system collection.

Any other label (a user or organization handle, a private connection, a model only private
connections serve, a label added later that is not listed here) hides the series: the rule
fails closed. Counts of private traffic still show in the totals of public series such as
`routectl_requests_total{model=""...}` only when no private label is attached.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

from routectl.runtime.errors import RoutingError
from routectl.table import RoutingTable

__all__ = ["PUBLIC_LABELS", "check_metrics_token", "public_values", "public_view"]

PUBLIC_LABELS = frozenset(
    # `kind`: prompt or completion tokens; `code`: a limit refusal's error code; `outcome`: what a
    # limit backend failure did (allowed or refused)
    (
        "route",
        "status",
        "result",
        "reason",
        "phase",
        "sha256",
        "le",
        "quantile",
        "strategy",
        "api",
        "kind",
        "code",
        "outcome",
    )
)
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def check_metrics_token(configured: str | None, authorization: str) -> bool:
    """True when the request may see every series (a token is set and it was given); False
    when only the public view is served (no token set); 401 when a token is set and the request
    lacks it."""
    if not configured:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), configured.encode("utf-8")
    ):
        return True
    raise RoutingError("invalid_api_key", 401, "/metrics needs the metrics token")


def public_values(table: RoutingTable) -> dict[str, frozenset[str]]:
    """The label values that name nothing private, per tenant-naming label."""
    platform = {cid for cid, c in table.connections.items() if c.owner_kind == "platform"}
    models = {m for cid in platform for m in table.connections[cid].models}
    systems = {name for name, c in table.collections.items() if c.scope == "system"}
    return {
        "connection": frozenset(platform),
        "model": frozenset(models | {""}),  # "" = no model was selected (errors before routing)
        "collection": frozenset(systems | {""}),
    }


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _public(labels: str, values: dict[str, frozenset[str]]) -> bool:
    for name, raw in _LABEL.findall(labels):
        if name in PUBLIC_LABELS:
            continue
        allowed = values.get(name)
        if allowed is None or _unescape(raw) not in allowed:
            return False
    return True


def public_view(exposition: bytes, values: dict[str, frozenset[str]]) -> bytes:
    """The Prometheus text exposition with every non-public sample line removed."""
    kept: list[str] = []
    for line in _lines(exposition):
        if line.startswith("#") or "{" not in line:
            kept.append(line)
            continue
        labels = line[line.index("{") + 1 : line.rindex("}")]
        if _public(labels, values):
            kept.append(line)
    return ("\n".join(kept) + "\n").encode()


def _lines(exposition: bytes) -> Iterable[str]:
    return (line for line in exposition.decode("utf-8", "replace").splitlines() if line)
