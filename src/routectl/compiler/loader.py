"""YAML -> plain data, with the line:col of every node, so every error can point into the file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from routectl.errors import Diagnostic

__all__ = ["Document", "PathKey", "format_path", "load_document"]

# A path into the document: mapping keys and list indices, e.g. ("collections", "x", "members", 1).
PathKey = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# The implicit resolvers of the safe loader by first character, as tuples: resolving is the
# hot loop of loading (one call per scalar), and pyyaml's generic resolve also walks path
# resolvers that the safe loader never has.
_IMPLICIT: dict[str, tuple[tuple[str, Any], ...]] = {
    str(first): tuple(pairs)
    for first, pairs in yaml.SafeLoader.yaml_implicit_resolvers.items()
    if first is not None
}
assert None not in yaml.SafeLoader.yaml_implicit_resolvers
# YAML 1.1 (pyyaml) reads `1e-7` and `1.5e7` as strings: its floats need a dot and a signed
# exponent. People (and YAML 1.2, JSON) write prices that way, so those are numbers here too.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
for _first in "-+.0123456789":
    _IMPLICIT[_first] = (
        *_IMPLICIT.get(_first, ()),
        ("tag:yaml.org,2002:float", _EXPONENT_FLOAT),
    )


_ScalarNode = yaml.ScalarNode

# Bounds on hostile input (a routing.yaml arrives in a pull request): the deepest nesting a
# document may have (routing.yaml needs 6; `metadata` is free-form but a dashboard's, not a
# program's), how many values anchors and aliases may add to the document when expanded (an alias
# "bomb" of a few hundred bytes expands to billions), and the longest integer (Python refuses to
# convert more than 4300 digits; no routing number needs more than 20).
MAX_DEPTH = 64
MAX_ALIAS_EXPANSION = 100_000
MAX_INT_DIGITS = 100

# libyaml's parser is several times faster on large files; the result is the same
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    def resolve(self, kind: Any, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is _ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return _STR
        if kind is yaml.SequenceNode:
            return "tag:yaml.org,2002:seq"
        return "tag:yaml.org,2002:map"


_TAG_WORDS = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
}


@dataclass
class Document:
    """Plain data of a YAML file; finds the line:col (1-based) of any path on demand.

    Marks are looked up in the node tree only when a diagnostic needs one, so loading a valid
    file pays nothing for them.
    """

    filename: str
    data: Any
    diagnostics: list[Diagnostic] = field(default_factory=list)
    root: Any = None  # the yaml node tree; composed from `text` on the first mark() when None
    # per mapping node (by id): key -> (key node, value node), built on first lookup
    _children: dict[int, dict[str, tuple[Any, Any]]] = field(default_factory=dict, repr=False)
    text: str | None = field(default=None, repr=False)

    def _child(self, node: Any, part: str | int) -> tuple[Any, Any] | None:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            table = self._children.get(id(node))
            if table is None:
                table = {}
                for key_node, value_node in node.value:
                    if key_node.tag == _STR:
                        table.setdefault(key_node.value, (key_node, value_node))
                self._children[id(node)] = table
            return table.get(part)
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            return None, node.value[part]
        return None

    def mark(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """The line:col of `path` (of its key when `key`), else of its nearest existing parent."""
        if self.root is None and self.text is not None:
            self.root = _compose(self.text)
            self.text = None
        node = self.root
        if node is None:
            return (1, 1)
        key_node = None
        for part in path:
            found = self._child(node, part)
            if found is None:
                key_node = None
                break
            key_node, node = found
        target = key_node if key and key_node is not None else node
        return (target.start_mark.line + 1, target.start_mark.column + 1)

    def diagnostic(self, path: PathKey, message: str, *, key: bool = False) -> Diagnostic:
        """A Diagnostic pointing at `path` in this document."""
        line, col = self.mark(path, key=key)
        return Diagnostic(line, col, format_path(path), message, self.filename)


def format_path(path: PathKey) -> str:
    """`collections.flash2.5.members[1].weight` from ("collections", "flash2.5", "members", 1, "weight")."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(f".{part}" if out else part)
    return "".join(out)


def load_document(text: str, filename: str = "routing.yaml") -> Document:
    """Parse YAML text into a Document; syntax errors become diagnostics, never exceptions."""
    try:
        data = _plain_data(text)
    except _Fallback:
        return _load_nodes(text, filename)
    # nothing in the file needs a diagnostic from the loader; marks come from the node tree,
    # composed only if a later check asks for one
    return Document(filename=filename, data=data, text=text)


def _compose(text: str) -> Any:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


# ------------------------------------------------------------------------------- the fast path
# A plain document (no anchors, aliases, explicit tags, non-name keys or duplicate keys: every
# routing.yaml written by hand or generated) is built straight from libyaml's parser events.
# Composing the node tree costs four times as much (a Python node and two marks per value), and
# a valid file never needs a mark. Anything else falls back to the node path below, which
# builds the same data and reports what the fast path declined.


class _Fallback(Exception):
    """The document needs the node path: it has something to report or a rare YAML feature."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_BOOL_VALUES: dict[str, bool] = dict(yaml.constructor.SafeConstructor.bool_values)
# the spellings where int()/float() agree with pyyaml's constructors (no 0x, 0o, "_", ":", .inf)
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DECIMAL_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?")
_NO_KEY: Any = object()  # a mapping waiting for its next key


def _scalar(loader: Any, tag: str, value: str, event: Any) -> Any:
    """The value of a resolved non-string scalar, as pyyaml's safe constructor builds it."""
    if tag == _INT and len(value) > MAX_INT_DIGITS:
        raise _Fallback  # the node path reports it
    if tag == _INT and _DECIMAL_INT.fullmatch(value):
        return int(value)
    if tag == _FLOAT and _DECIMAL_FLOAT.fullmatch(value):
        return float(value)
    if tag == _BOOL:
        return _BOOL_VALUES[value.lower()]
    if tag == _NULL:
        return None
    node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
    return loader.construct_object(node)


def _plain_data(text: str) -> Any:
    """Plain data of a plain single-document file from parser events; _Fallback otherwise."""
    loader = _Loader(text)
    try:
        return _build_from_events(loader)
    except yaml.YAMLError:
        raise _Fallback from None
    finally:
        loader.dispose()


def _build_from_events(loader: Any) -> Any:
    get = loader.get_event
    if type(get()) is not yaml.StreamStartEvent or type(get()) is not yaml.DocumentStartEvent:
        raise _Fallback
    root: Any = None
    # (container, key) of each enclosing collection; `container` is the dict or list being
    # filled (None above the root), `key` the mapping key whose value comes next
    stack: list[tuple[Any, Any]] = []
    container: Any = None
    key: Any = _NO_KEY
    value: Any
    while True:
        event = get()
        kind = type(event)
        if kind is _ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            raw = event.value
            tag = _STR
            if event.implicit[0]:  # plain: resolved as _Loader.resolve does
                for candidate, regexp in _IMPLICIT.get(raw[:1], ()):
                    if regexp.match(raw):
                        tag = candidate
                        break
            if key is _NO_KEY and type(container) is dict:
                if tag != _STR or raw in container:
                    raise _Fallback
                key = raw
                continue
            value = raw if tag in (_STR, _TIMESTAMP) else _scalar(loader, tag, raw, event)
        elif kind is _MappingStartEvent or kind is _SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            if key is _NO_KEY and type(container) is dict:
                raise _Fallback  # a list or mapping as a key
            value = {} if kind is _MappingStartEvent else []
        elif kind is _MappingEndEvent or kind is _SequenceEndEvent:
            container, key = stack.pop()
            continue
        elif kind is yaml.DocumentEndEvent:
            break
        else:  # an alias, or something a plain document never holds
            raise _Fallback
        if container is None:
            root = value
        elif type(container) is list:
            container.append(value)
        else:
            container[key] = value
            key = _NO_KEY
        if kind is not _ScalarEvent:
            if len(stack) >= MAX_DEPTH:
                raise _Fallback  # the node path reports it
            stack.append((container, key))
            container, key = value, _NO_KEY
    if type(get()) is not yaml.StreamEndEvent:
        raise _Fallback  # more than one document
    return root


_ScalarEvent = yaml.ScalarEvent
_MappingStartEvent = yaml.MappingStartEvent
_MappingEndEvent = yaml.MappingEndEvent
_SequenceStartEvent = yaml.SequenceStartEvent
_SequenceEndEvent = yaml.SequenceEndEvent


# ------------------------------------------------------------------------------- the node path


def _load_nodes(text: str, filename: str) -> Document:
    """The Document of any file, built from its node tree, with every loader diagnostic."""
    doc = Document(filename=filename, data=None)
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            what = exc.problem or exc.context or "invalid YAML"
            context = f" ({exc.context})" if exc.context and exc.problem else ""
            doc.diagnostics.append(
                Diagnostic(line, col, "", f"YAML syntax error: {what}{context}", filename)
            )
            return doc
        except yaml.YAMLError as exc:
            doc.diagnostics.append(Diagnostic(1, 1, "", f"YAML error: {exc}", filename))
            return doc
        if node is None:
            return doc
        doc.root = node
        builder = _Builder(loader, doc)
        try:
            doc.data = builder.build(node, ())
        except _Refused as exc:  # a bound was passed: one diagnostic, no data to check further
            mark = exc.node.start_mark
            doc.diagnostics.append(
                Diagnostic(
                    mark.line + 1, mark.column + 1, format_path(exc.path), exc.message, filename
                )
            )
            doc.data = None
        except yaml.YAMLError as exc:  # e.g. an unknown tag such as !!python/object
            mark = getattr(exc, "problem_mark", None)
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = getattr(exc, "problem", None) or str(exc)
            doc.diagnostics.append(Diagnostic(line, col, "", f"YAML error: {problem}", filename))
            doc.data = None
    finally:
        loader.dispose()
    return doc


class _Refused(Exception):
    """The document passed one of the loader's bounds (depth, alias expansion)."""

    def __init__(self, node: Any, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.path = path
        self.message = message


class _Builder:
    """Builds plain data from a node tree, recording marks and catching duplicate keys.

    Aliases share nodes in the tree, so a node built a second time is an alias's expansion: those
    are counted, and past MAX_ALIAS_EXPANSION the build stops with a diagnostic at the alias."""

    def __init__(self, loader: Any, doc: Document) -> None:
        self._loader = loader
        self._doc = doc
        self._seen: set[int] = set()
        self._expanded = 0
        # the innermost container written out (not reached through an alias): where an alias
        # bomb is reported, since the alias itself leaves no mark in the node tree
        self._written: list[tuple[Any, PathKey]] = []

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        if len(path) > MAX_DEPTH:
            raise _Refused(node, path, f"nested deeper than {MAX_DEPTH} levels")
        ident = id(node)
        if ident in self._seen:
            self._expanded += 1
            if self._expanded > MAX_ALIAS_EXPANSION:
                at, where = self._written[-1] if self._written else (node, path)
                raise _Refused(
                    at,
                    where,
                    f"YAML aliases here expand to more than {MAX_ALIAS_EXPANSION} values "
                    "(an alias bomb?); write the values out",
                )
            return self._build(node, path)
        self._seen.add(ident)
        if isinstance(node, yaml.ScalarNode):
            return self._build(node, path)
        self._written.append((node, path))
        try:
            return self._build(node, path)
        finally:
            self._written.pop()

    def _build(self, node: yaml.Node, path: PathKey) -> Any:
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self._error(node, path, f"unsupported YAML tag {node.tag!r}")
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self._error(node, path, f"unsupported YAML tag {node.tag!r}")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _TIMESTAMP:
            return node.value  # keep dates as written: the table is JSON, not Python objects
        if tag == _INT and len(node.value) > MAX_INT_DIGITS:
            raise _Refused(node, path, f"integer of {len(node.value)} characters is too large")
        return self._loader.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR:
                key = key_node.value
            else:
                self._bad_key(key_node, path)
                continue
            if key in out:
                first = self._doc.mark((*path, key), key=True)
                self._error(
                    key_node,
                    (*path, key),
                    f"duplicate key '{key}' (first defined at line {first[0]})",
                )
                continue
            out[key] = self.build(value_node, (*path, key))
        return out

    def _bad_key(self, key_node: Any, path: PathKey) -> None:
        if not isinstance(key_node, yaml.ScalarNode):
            self._error(key_node, path, "a mapping key must be a plain name, not a list or mapping")
        elif key_node.tag == "tag:yaml.org,2002:merge":
            self._error(
                key_node, path, "YAML merge keys (<<) are not supported; write the keys out"
            )
        else:
            kind = _TAG_WORDS.get(key_node.tag, key_node.tag)
            self._error(
                key_node,
                path,
                f"key {key_node.value!r} is read as {kind}; quote it to make it a name",
            )

    def _error(self, node: Any, path: PathKey, message: str) -> None:
        mark = node.start_mark
        self._doc.diagnostics.append(
            Diagnostic(
                mark.line + 1, mark.column + 1, format_path(path), message, self._doc.filename
            )
        )
