"""YAML text to plain data, remembering the line of every key and value.

Used by ``fleet.policy.loading``. ruamel.yaml *composes* the text into nodes (which carry their
start marks); this module builds plain ``dict``/``list``/scalars from the nodes itself instead
of using ruamel's constructor, for three reasons:

- every value gets a line, so an error anywhere can be reported as ``FILE:LINE``;
- problems the constructor would raise as exceptions without a line (duplicate keys, an
  invalid date, an unknown ``!tag``) become problems at their line, and loading goes on to
  find the other errors of the file;
- hostile input stays cheap and clean: aliases are expanded under a node budget (no "billion
  laughs"), recursive aliases and nesting deeper than ``MAX_DEPTH`` are refused.

Only the YAML core schema is accepted (strings, integers, floats, booleans, null, timestamps,
mappings with string keys, sequences, merge keys ``<<``); other tags are errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

FieldPath = tuple[str | int, ...]

#: Real policies nest about ten levels deep.
MAX_DEPTH = 64
#: Values per document after alias expansion; a real policy has a few hundred.
MAX_NODES = 100_000

_CORE = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = (_CORE + t for t in ("str", "map", "seq", "merge"))
_SCALAR_KINDS = {
    _CORE + "int": "integer",
    _CORE + "float": "number",
    _CORE + "bool": "boolean",
    _CORE + "null": "null",
    _CORE + "timestamp": "date or timestamp",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """A YAML-level problem: 1-based line, field path (may be empty), message."""

    line: int
    path: FieldPath
    message: str


@dataclass
class Document:
    """One YAML document as plain data, with the lines of its keys and values."""

    data: Any
    line: int
    """Line where the document's content starts."""
    key_lines: dict[FieldPath, int] = field(default_factory=dict)
    value_lines: dict[FieldPath, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Problems inside this document; their paths hold unusable values."""

    def value_line(self, path: FieldPath) -> int:
        """Line of the value at ``path``, or of its nearest ancestor that exists.

        A mapping or list value is pointed at by its key's line: in block style its "value
        line" would be the line of its first entry, which reads as if that entry were wrong.
        """
        if isinstance(self.get(path), dict | list):
            return self.key_line(path)
        return self._nearest(self.value_lines, path)

    def get(self, path: FieldPath) -> Any:
        """The data at ``path``, or None when there is nothing there."""
        node = self.data
        for part in path:
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node

    def key_line(self, path: FieldPath) -> int:
        """Line of the key of ``path`` (of a list item: the item), or of the nearest ancestor."""
        return self._nearest(self.key_lines, path)

    def _nearest(self, lines: dict[FieldPath, int], path: FieldPath) -> int:
        for end in range(len(path), 0, -1):
            line = lines.get(path[:end])
            if line is not None:
                return line
        return self.line

    def is_under_problem(self, path: FieldPath) -> bool:
        """True when ``path`` is at or below a value the YAML layer already reported."""
        return any(path[: len(p.path)] == p.path for p in self.problems if p.path)


class _Abort(Exception):
    """Stop building this document: it is too big, too deep or recursive."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse(text: str) -> tuple[list[Document], list[Problem]]:
    """Every non-empty document of ``text``, and the problems found.

    A syntax error ends the stream (the parser cannot resynchronise), but the documents before
    it are returned so that their errors are reported too.
    """
    yaml = YAML(typ="safe", pure=True)
    docs: list[Document] = []
    problems: list[Problem] = []
    too_deep = _flow_too_deep(text)
    if too_deep is not None:
        return docs, [Problem(too_deep, (), f"nested deeper than {MAX_DEPTH} levels")]
    nodes = yaml.compose_all(text)
    with warnings.catch_warnings():
        # ruamel warns (on stderr) about YAML 1.1 quirks; the loader's output is its errors.
        warnings.simplefilter("ignore")
        for node in _guarded(nodes, text, problems):
            if node is None or (_tag(node) == _CORE + "null" and not node.value):
                continue  # an empty document (``---`` alone, or only comments)
            builder = _Builder(yaml)
            line = node.start_mark.line + 1
            doc = Document(data=None, line=line)
            builder.doc = doc
            doc.key_lines[()] = doc.value_lines[()] = line
            try:
                doc.data = builder.build(node, (), 0)
            except _Abort as exc:
                doc.problems.append(Problem(exc.line, (), exc.message))
                doc.data = None
            problems += doc.problems
            if doc.data is not None:
                docs.append(doc)
    return docs, problems


def _guarded(nodes: Iterator[Node | None], text: str, problems: list[Problem]) -> Iterator[Any]:
    """Iterate the composer, turning its exceptions into problems (and ending the stream)."""
    while True:
        try:
            node = next(nodes)
        except StopIteration:
            return
        except MarkedYAMLError as exc:
            problems.append(
                Problem(_mark_line(exc.problem_mark or exc.context_mark), (), _syntax_message(exc))
            )
            return
        except ReaderError as exc:
            line = text.count("\n", 0, max(0, int(exc.position))) + 1
            problems.append(Problem(line, (), f"unacceptable character: {exc.reason}"))
            return
        except RecursionError:
            problems.append(
                Problem(_line_of_depth(text), (), f"nested deeper than {MAX_DEPTH} levels")
            )
            return
        except (YAMLError, ValueError, TypeError, KeyError, IndexError) as exc:
            # ruamel's parser raises a few plain exceptions on odd input; the loader promises
            # a clean error, never a traceback.
            problems.append(Problem(1, (), f"cannot parse YAML ({type(exc).__name__})"))
            return
        yield node


def _mark_line(mark: Any) -> int:
    line = getattr(mark, "line", None)
    return int(line) + 1 if isinstance(line, int) else 1


def _syntax_message(exc: MarkedYAMLError) -> str:
    # Built from the problem and context only: str(exc) quotes the source line, which could
    # hold a secret.
    problem = str(exc.problem or "invalid YAML").strip()
    message = f"YAML syntax error: {problem}"
    context_line = getattr(exc.context_mark, "line", None)
    if exc.context and isinstance(context_line, int):
        problem_line = getattr(exc.problem_mark, "line", None)
        if problem_line != context_line:
            message += f" ({exc.context} started at line {context_line + 1})"
    return message


def _flow_too_deep(text: str) -> int | None:
    """The line where flow collections (``[`` / ``{``) nest deeper than ``MAX_DEPTH``, if any.

    Checked before parsing because ruamel's scanner gets quadratically slow on thousands of
    nested brackets (a second for a few thousand). Quoted scalars and comments are skipped, and
    a bracket counts only where a flow collection can start, so ``a[b`` in a plain scalar does
    not; an unusual file can at worst be under-counted, and the builder's own depth check then
    still applies.
    """
    depth = 0
    line = 1
    previous = "\n"  # last significant character: a bracket counts after one of ":-,?[{\n"
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line += 1
            previous = "\n"
        elif char in " \t\r":
            pass
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n"):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif char in "'\"" and previous in ":-,?[{\n":
            end = _skip_quoted(text, i)
            line += text.count("\n", i, end)
            i = end
            previous = char
            continue
        elif char in "[{" and previous in ":-,?[{\n":
            depth += 1
            if depth > MAX_DEPTH:
                return line
            previous = char
        elif char in "]}" and depth > 0:
            depth -= 1
            previous = char
        else:
            # Inside a plain scalar (``x[[``) brackets are text: nothing after this counts as
            # opening until a separator comes.
            previous = "." if char in "[{" else char
        i += 1
    return None


def _skip_quoted(text: str, start: int) -> int:
    """Index just after the quoted scalar starting at ``start`` (or the end of the text)."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1 : i + 2] == "'":  # '' is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _line_of_depth(text: str) -> int:
    """Where block nesting gets too deep (after a RecursionError): the first line indented
    deeper than ``MAX_DEPTH`` levels."""
    stack: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(stripped)
        while stack and stack[-1] >= indent:
            stack.pop()
        stack.append(indent)
        if len(stack) > MAX_DEPTH:
            return number
    return 1


def _tag(node: Node) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag))


class _Builder:
    """Builds plain data from one document's nodes, recording lines and problems."""

    def __init__(self, yaml: YAML) -> None:
        self.constructor = yaml.constructor
        self.doc = Document(data=None, line=1)
        self.count = 0
        self.active: set[int] = set()  # ids of the collections being built (recursion guard)

    def problem(self, line: int, path: FieldPath, message: str) -> None:
        self.doc.problems.append(Problem(line, path, message))

    def build(self, node: Node, path: FieldPath, depth: int) -> Any:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_NODES:
            raise _Abort(
                line, f"document too large: more than {MAX_NODES} values (after expanding aliases)"
            )
        if depth > MAX_DEPTH:
            raise _Abort(line, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ScalarNode):
            return self.scalar(node, path, line)
        if id(node) in self.active:
            raise _Abort(line, "recursive alias: a value contains itself")
        self.active.add(id(node))
        try:
            tag = _tag(node)
            if isinstance(node, SequenceNode) and tag == _SEQ:
                return self.sequence(node, path, depth)
            if isinstance(node, MappingNode) and tag == _MAP:
                return self.mapping(node, path, depth)
            self.problem(line, path, f"unsupported YAML tag {tag!r}")
            return None
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: FieldPath, line: int) -> Any:
        tag = _tag(node)
        if tag == _STR:
            text = str(node.value)
            if not _is_unicode(text):
                self.problem(line, path, _NOT_UNICODE)
                return None
            return text
        kind = _SCALAR_KINDS.get(tag)
        if kind is None:
            what = (
                "binary values are not supported"
                if tag == _CORE + "binary"
                else (f"unsupported YAML tag {tag!r}")
            )
            self.problem(line, path, what)
            return None
        try:
            value = self.constructor.construct_object(node, deep=True)
        except Exception:  # ruamel raises ValueError/KeyError/ConstructorError here
            # The message leaves the value out (it could be a secret).
            self.problem(line, path, f"not a valid {kind}")
            return None
        return _plain_scalar(value)

    def sequence(self, node: SequenceNode, path: FieldPath, depth: int) -> list[Any]:
        out: list[Any] = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            item_line = item.start_mark.line + 1
            self.doc.key_lines.setdefault(child, item_line)
            self.doc.value_lines.setdefault(child, item_line)
            out.append(self.build(item, child, depth + 1))
        return out

    def mapping(
        self, node: MappingNode, path: FieldPath, depth: int, *, skip: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Build a mapping; ``skip`` holds keys already set where this one is merged in."""
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if _tag(key_node) == _MERGE:
                merges.append(value_node)
                continue
            key = self.key(key_node, path, key_line)
            if key is None:
                continue
            child = (*path, key)
            if key in first_line:
                self.problem(
                    key_line, child, f"duplicate key {key!r} (first at line {first_line[key]})"
                )
                continue
            first_line[key] = key_line
            if key in skip:
                # A merged mapping (``<<: *defaults``) never overrides the mapping's own keys
                # (nor earlier merges), so its value is not even built: no stray lines.
                continue
            self.doc.key_lines[child] = key_line
            self.doc.value_lines[child] = value_node.start_mark.line + 1
            out[key] = self.build(value_node, child, depth + 1)
        for merge in merges:
            for source in self.merge_sources(merge, path):
                self.count += 1
                if id(source) in self.active:
                    raise _Abort(source.start_mark.line + 1, "recursive alias in a merge key")
                self.active.add(id(source))
                try:
                    out.update(self.mapping(source, path, depth, skip=frozenset(out) | skip))
                finally:
                    self.active.discard(id(source))
        return out

    def merge_sources(self, node: Node, path: FieldPath) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            return list(node.value)
        self.problem(
            node.start_mark.line + 1,
            (*path, "<<"),
            "a merge key (<<) takes a mapping or a list of mappings",
        )
        return []

    def key(self, node: Node, path: FieldPath, line: int) -> str | None:
        if isinstance(node, ScalarNode) and _tag(node) == _STR:
            if not _is_unicode(str(node.value)):
                self.problem(line, (*path, "?"), _NOT_UNICODE)
                return None
            return str(node.value)
        # The problem's path names the would-be key: nothing is stored under it, so no other
        # error is hidden by it.
        if isinstance(node, ScalarNode):
            text = str(node.value) or "null"
            self.problem(line, (*path, text), f"key {text!r} is not a string; quote it")
        else:
            self.problem(line, (*path, "?"), "complex (non-scalar) mapping keys are not supported")
        return None


#: A double-quoted YAML escape such as \ud800 gives a lone surrogate, which no file, database
#: or hash can hold.
_NOT_UNICODE = "not valid Unicode (a lone surrogate escape, \\uD800-\\uDFFF)"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_scalar(value: Any) -> Any:
    """ruamel's scalar subclasses (ScalarFloat, TimeStamp, ...) to the plain Python types."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime):
        return datetime.combine(value.date(), value.time(), value.tzinfo)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    return str(value)
