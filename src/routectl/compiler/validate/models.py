"""Model ids name a defined provider."""

from __future__ import annotations

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.wording import hint_for
from routectl.errors import Diagnostic

__all__ = ["check_model_providers"]


def check_model_providers(doc: Document, index: Index) -> list[Diagnostic]:
    """The `provider/` part of every model id is a provider of the file."""
    out: list[Diagnostic] = []
    for model_id in index.models:
        provider, sep, _ = model_id.partition("/")
        if sep and provider not in index.providers:
            out.append(
                doc.diagnostic(
                    ("models", model_id),
                    f"unknown provider '{provider}'{hint_for(provider, index.providers, 'providers')}",
                    key=True,
                )
            )
    return out
