"""Meaning checks beyond the schema: references, duplicates, collisions, scope and serving rules.

The index of the document is built once, up front; then each check, one concern each, reads the
document and the index and returns its diagnostics. No check depends on another having run.
They read the plain data defensively (any part may be malformed, the schema reports that), so a
file with schema errors still gets every meaning error reported in the same run.
"""

from __future__ import annotations

from collections.abc import Callable

from routectl.compiler.loader import Document
from routectl.compiler.validate.aliases import (
    check_alias_collisions,
    check_alias_scope,
    check_auto_aliases,
)
from routectl.compiler.validate.base_urls import check_base_urls
from routectl.compiler.validate.connections import (
    check_connection_endpoints,
    check_connection_ids,
    check_connection_models,
    check_connection_owners,
    check_connection_providers,
    check_upstream_names,
)
from routectl.compiler.validate.handles import (
    check_api_keys,
    check_handle_clashes,
    check_org_members,
)
from routectl.compiler.validate.index import Index, build_index
from routectl.compiler.validate.kinds import check_collection_kinds, check_embedding_connections
from routectl.compiler.validate.limits import check_affinity_keys, check_limits
from routectl.compiler.validate.members import check_members
from routectl.compiler.validate.models import check_model_providers
from routectl.compiler.validate.names import RESERVED_HANDLES, RESERVED_NAMES, split_member_model
from routectl.compiler.validate.reserved import check_reserved_words
from routectl.compiler.validate.scope import check_collection_scopes
from routectl.compiler.validate.values import check_values
from routectl.errors import Diagnostic

__all__ = [
    "CHECKS",
    "RESERVED_HANDLES",
    "RESERVED_NAMES",
    "Check",
    "check_meaning",
    "split_member_model",
]

Check = Callable[[Document, Index], list[Diagnostic]]

# In any order: each check reads only the document and the index.
CHECKS: tuple[Check, ...] = (
    check_values,
    check_handle_clashes,
    check_org_members,
    check_api_keys,
    check_reserved_words,
    check_base_urls,
    check_model_providers,
    check_connection_ids,
    check_connection_owners,
    check_connection_providers,
    check_connection_models,
    check_upstream_names,
    check_connection_endpoints,
    check_collection_scopes,
    check_alias_scope,
    check_alias_collisions,
    check_auto_aliases,
    check_members,
    check_collection_kinds,
    check_embedding_connections,
    check_limits,
    check_affinity_keys,
)


def check_meaning(doc: Document) -> list[Diagnostic]:
    """Every meaning error of the document, as diagnostics."""
    index = build_index(doc)
    return [diagnostic for check in CHECKS for diagnostic in check(doc, index)]
