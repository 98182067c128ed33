"""Strict decoding of YAML documents into typed values, collecting every problem at once.

Sits at the bottom of spec/: topology.py and workloads.py walk raw YAML through a `Doc`
cursor that knows the file, the object and the field path, so that each problem reads
`file (Kind ns/name): spec.template.spec.containers[0].ports[1].containerPort: ...`.
Like kubectl's strict validation, fields we do not know are errors, while fields that exist
in Kubernetes but do not matter to networking are listed as known and ignored.
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import yaml

from ..errors import Problem, SpecError, excerpt

_MISSING = object()

# Bounds on any YAML file the testbed reads (issue 11: a 600-byte anchor bomb took 940 MB,
# 500 levels of nesting gave a RecursionError). Generous for real inputs: a 10,000-pod
# manifest written pod by pod is about 2 MB, 10,000 documents and 300,000 nodes.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DOCUMENTS = 20_000
MAX_DEPTH = 64  # nested mappings/sequences; Kubernetes objects need about 15
MAX_ALIASES = 1_000  # `*alias` uses in one file
MAX_NODES = 1_000_000  # YAML nodes in one document once aliases are expanded


class Problems:
    """Accumulates problems; `raise_if_any` ends validation with all of them."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, problem: Problem) -> None:
        self.items.append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


class Doc:
    """A cursor on one YAML value: file, object description, field path, and problem sink."""

    def __init__(self, value: Any, file: str, problems: Problems, path: str = "", document: str = "") -> None:
        self.value, self.file, self.problems = value, file, problems
        self.path, self.document = path, document

    # -- navigation -----------------------------------------------------------------
    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def child(self, key: str | int, value: Any) -> Doc:
        return Doc(value, self.file, self.problems, self._child_path(key), self.document)

    def error(self, message: str, key: str | int | None = None) -> None:
        path = self.path if key is None else self._child_path(key)
        self.problems.add(Problem(self.file, path, message, self.document))

    # -- structure ------------------------------------------------------------------
    def is_mapping(self) -> bool:
        if isinstance(self.value, dict):
            return True
        self.error(f"expected a mapping, got {_type_name(self.value)}")
        return False

    def check_keys(
        self, known: Iterable[str], ignored: Iterable[str] = (), hint: Callable[[str, set[str]], str] | None = None
    ) -> None:
        """Reject unknown fields (strict decode); `ignored` are real fields we do not model;
        `hint(key, allowed)` may add a word to the message (a v1beta1 spelling, a wrong case)."""
        if not isinstance(self.value, dict):
            return
        allowed = set(known) | set(ignored)
        for key in self.value:
            if not isinstance(key, str):
                self.error(f"field names must be strings, got {_type_name(key)} {excerpt(key)}")
            elif key not in allowed:
                self.error(f"unknown field {excerpt(key)}" + (hint(key, allowed) if hint else ""), key)

    def field(self, key: str) -> Doc:
        value = self.value.get(key, _MISSING) if isinstance(self.value, dict) else _MISSING
        return self.child(key, value)

    def present(self) -> bool:
        return self.value is not _MISSING and self.value is not None

    # -- typed getters: report a problem and return the default on any mismatch --------
    def _get(self, key: str, types: tuple[type, ...], expected: str, required: bool, default: Any) -> Any:
        node = self.field(key)
        if not node.present():
            if required:
                self.error("required field is missing", key)
            return default
        value = node.value
        if isinstance(value, bool) and bool not in types:
            node.error(f"expected {expected}, got boolean {value!r}")
            return default
        if not isinstance(value, types):
            node.error(f"expected {expected}, got {_type_name(value)} {excerpt(value)}")
            return default
        return value

    def str(self, key: str, required: bool = False, default: str | None = None) -> Any:
        return self._get(key, (str,), "a string", required, default)

    def int(
        self,
        key: builtins.str,
        required: builtins.bool = False,
        default: builtins.int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._get(key, (int,), "an integer", required, default)
        if isinstance(value, int) and value is not default:
            if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
                lo = "" if minimum is None else str(minimum)
                hi = "" if maximum is None else str(maximum)
                self.error(f"{value} is out of range [{lo}, {hi}]", key)
                return default
        return value

    def bool(self, key: builtins.str, required: builtins.bool = False, default: builtins.bool | None = None) -> Any:
        return self._get(key, (bool,), "a boolean", required, default)

    def mapping(self, key: builtins.str, required: builtins.bool = False) -> Doc | None:
        node = self.field(key)
        if not node.present():
            if required:
                self.error("required field is missing", key)
            return None
        return node if node.is_mapping() else None

    def items(self, key: builtins.str, required: builtins.bool = False) -> Iterator[Doc]:
        """Yield a cursor per element of a list field."""
        node = self.field(key)
        if not node.present():
            if required:
                self.error("required field is missing", key)
            return
        if not isinstance(node.value, list):
            node.error(f"expected a list, got {_type_name(node.value)}")
            return
        for i, value in enumerate(node.value):
            yield node.child(i, value)

    def string_map(self, key: builtins.str) -> dict[builtins.str, builtins.str]:
        """A map[string]string such as labels or nodeSelector."""
        node = self.mapping(key)
        out: dict[str, str] = {}
        if node is None:
            return out
        for k, v in node.value.items():
            if not isinstance(k, str):
                node.error(f"keys must be strings, got {_type_name(k)} {excerpt(k)}")
            elif v is None:
                out[k] = ""
            elif isinstance(v, bool) or not isinstance(v, (str, int, float)):
                node.error(f"expected a string value, got {_type_name(v)} {excerpt(v)}", k)
            elif not isinstance(v, str):
                # Kubernetes rejects `app: 1` (not a string); quoting is required.
                node.error(f"expected a string value, got {_type_name(v)} {excerpt(v)} (quote it)", k)
            else:
                out[k] = v
        return out


class _Strict:
    """Rejects a field given twice in one mapping, as strict decoding does (kind's
    UnmarshalStrict, kubectl's strict field validation); PyYAML keeps the last.

    It also bounds what a file may cost, while composing and before anything is constructed:
    nesting depth, alias uses, and the size of each document with its aliases expanded
    (a "billion laughs" anchor bomb is refused after reading a few hundred bytes).
    Mixed into a loader before its Composer (the Python one in both loaders below).
    """

    _depth = 0
    _aliases = 0
    _nodes = 0  # in the document being composed, aliases not expanded

    def _refuse(self, message: str) -> None:
        event = self.peek_event()  # type: ignore[attr-defined]
        raise yaml.composer.ComposerError(None, None, message, event.start_mark if event else None)

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.events.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                self._refuse(f"more than {MAX_ALIASES} aliases")
            return super().compose_node(parent, index)
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        aliases, self._nodes = self._aliases, 0
        node = super().compose_document()
        # Without an alias the document is its nodes, counted while composing; only aliases
        # need the (linear, but slower) walk of the expansion.
        size = 0 if node is None else self._nodes if self._aliases == aliases else _expanded_size(node)
        if size < 0:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a value that contains it (recursive alias)", node.start_mark
            )
        if size > MAX_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)",
                node.start_mark,
            )
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` keys may be overridden on purpose
            if key_node.tag == "tag:yaml.org,2002:str":
                key: Any = key_node.value  # the usual key: no need to construct it twice
            else:
                key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            if not isinstance(key, (str, int, float, bool)):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate field {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


class _StrictLoader(_Strict, yaml.SafeLoader):
    """The pure-Python loader: used where PyYAML was built without libyaml."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # type: ignore[override]
        # Bounded in the scanner too: PyYAML's scanner revisits every open flow level on each
        # token, so `[[[[...` 50,000 deep would take minutes before the composer saw any node.
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


if getattr(yaml, "__with_libyaml__", False):

    class _FastStrictLoader(
        _Strict,
        yaml.composer.Composer,
        yaml._yaml.CParser,  # type: ignore[misc]
        yaml.constructor.SafeConstructor,
        yaml.resolver.Resolver,
    ):
        """libyaml scans and parses (most of the time of reading a big manifest, in C: issue 13's
        5,000 objects in well under a second); the Python Composer above it keeps the bounds
        of `_Strict`, which see each node as it is composed. libyaml's scanner is not the one
        whose deep flow nesting was quadratic, and the composer's depth bound stops the reading."""

        def __init__(self, stream: Any) -> None:
            yaml._yaml.CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _LOADER: type = _FastStrictLoader
else:  # pragma: no cover - PyYAML without libyaml
    _LOADER = _StrictLoader


def _expanded_size(root: Any) -> int:
    """Number of nodes under `root` with every alias expanded; memoised, so linear in the
    composed graph even when the expansion is astronomically large. -1 when a node contains
    itself (a recursive alias): no Kubernetes object is infinite."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes and not children_done:
            if sizes[id(node)] < 0:
                return -1  # reached again while its own children are open: a cycle
            continue
        kids = _children(node)
        if not children_done:
            sizes[id(node)] = -1
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes or sizes[id(k)] < 0)
            if any(sizes.get(id(k), 0) < 0 for k in kids):
                return -1
            continue
        sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(k)] for k in kids))
    return sizes[id(root)]


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


# `-f -`: the manifests come from standard input, read once (bounded) and kept, since the
# CLI loads them more than once (checking an experiment, then running it).
STDIN = "-"
_STDIN_CACHE: list[str] = []


def _stdin_text() -> str:
    if not _STDIN_CACHE:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SpecError([Problem(STDIN, "", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")])
        try:
            _STDIN_CACHE.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise SpecError([Problem(STDIN, "", f"cannot read: not UTF-8 text (byte {exc.start})")]) from None
    return _STDIN_CACHE[0]


def load_documents(path: str) -> list[tuple[int, Any]]:
    """Read a multi-document YAML file; returns (index, document) pairs, empty documents skipped.

    A missing file, a file too large, malformed YAML, or YAML beyond the bounds above is a
    SpecError naming the file (and the line for YAML).
    """
    if path == STDIN:
        return load_text(_stdin_text(), path)
    if not os.path.exists(path):
        raise SpecError([Problem(path, "", "file not found")])
    if os.path.isdir(path):
        raise SpecError([Problem(path, "", "is a directory, expected a YAML file")])
    if not os.path.isfile(path):
        raise SpecError([Problem(path, "", "is not a regular file, expected a YAML file")])
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size  # read(n) would reserve n bytes up front
            data = raw.read(size + 1) if size <= MAX_FILE_BYTES else b""
        if size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
            raise SpecError([Problem(path, "", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")])
        return load_text(data.decode("utf-8"), path)
    except UnicodeDecodeError as exc:
        raise SpecError([Problem(path, "", f"cannot read: not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise SpecError([Problem(path, "", f"cannot read: {exc.strerror or exc}")]) from None


def _read(loader_class: type, text: str, path: str) -> list[Any]:
    loader = loader_class(text)
    docs = []
    try:
        while loader.check_data():
            docs.append(loader.get_data())
            if len(docs) > MAX_DOCUMENTS:
                raise SpecError([Problem(path, "", f"more than {MAX_DOCUMENTS:,} YAML documents")])
    finally:
        loader.dispose()
    return docs


def load_text(text: str, path: str) -> list[tuple[int, Any]]:
    """`load_documents` for text already read (standard input, a kubeadm patch in a topology):
    the same bounds and messages, `path` naming where the text came from. JSON is read by the
    same loader: a JSON document is a YAML document (kubectl reads both alike)."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError([Problem(path, "", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")])
    try:
        try:
            docs = _read(_LOADER, text, path)
        except yaml.YAMLError:
            if _LOADER is _StrictLoader:
                raise
            # Bad YAML: read it again with PyYAML's own parser, whose messages and positions
            # the error lines (and their tests) have always used; rare, and bounded as well.
            docs = _read(_StrictLoader, text, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError([Problem(path, where, f"malformed YAML: {reason}")]) from None
    except (ValueError, OverflowError) as exc:
        # e.g. `2024-13-45` as a timestamp, or an integer of more than 4,300 digits
        raise SpecError([Problem(path, "", f"malformed YAML: {str(exc).splitlines()[0]}")]) from None
    return [(i, d) for i, d in enumerate(docs) if d is not None]
