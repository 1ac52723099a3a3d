"""The meaning checks are independent: each reads the document and the index, none writes them."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest

from routectl.compiler.loader import load_document
from routectl.compiler.validate import CHECKS, check_meaning
from routectl.compiler.validate.index import build_index

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOCUMENTS = sorted(FIXTURES.glob("*/*.yaml"))


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_checks_give_the_same_diagnostics_in_any_order(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = sorted(check_meaning(load_document(text)))
    doc = load_document(text)
    index = build_index(doc)
    index_before, data_before = copy.deepcopy(index), copy.deepcopy(doc.data)
    for order in (CHECKS[::-1], random.Random(path.name).sample(CHECKS, len(CHECKS))):
        assert sorted(d for check in order for d in check(doc, index)) == expected
    assert index == index_before, "a check changed the index"
    assert doc.data == data_before, "a check changed the document"


def test_each_check_runs_on_its_own() -> None:
    path = FIXTURES / "invalid" / "many_mistakes.yaml"
    text = path.read_text(encoding="utf-8")
    together = sorted(check_meaning(load_document(text)))
    alone = []
    for check in CHECKS:
        doc = load_document(text)
        alone += check(doc, build_index(doc))
    assert sorted(alone) == together
