"""YAML that remembers where each key came from (pure: stdlib + PyYAML).

A study file is validated strictly, and every error names the key path, the file and the
line. PyYAML's ``safe_load`` forgets positions, so this module composes the node tree and
builds plain Python values while recording the line of every mapping key and list item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from capstudy.errors import CapstudyError

KeyPath = tuple[str | int, ...]


class StudyError(CapstudyError, ValueError):
    """A study file is wrong; the message starts with ``file:line: key.path:``.

    Attributes:
        file: The study file.
        line: 1-based line of the offending key or item (None when unknown).
        key_path: Dotted key path, e.g. ``space.lr.loguniform``.
    """

    def __init__(
        self, message: str, file: str = "", line: int | None = None, key_path: str = ""
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.key_path = key_path


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float.

    YAML 1.1 (PyYAML) needs a dot in a float, so ``lr: 1e-4`` would silently be the *string*
    ``"1e-4"``. Learning rates are written that way all the time, so accept the YAML 1.2 form.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def dotted(path: KeyPath) -> str:
    """``("space", "phi", "grid_search", 2)`` -> ``space.phi.grid_search[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


@dataclass
class SourceDoc:
    """A parsed YAML document with the line of every key path.

    Attributes:
        file: Display name of the file (used in messages).
        data: The plain Python value of the document.
        lines: Key path -> 1-based line of that key (mappings) or item (lists).
    """

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int | None:
        """Line of ``path``, or of its nearest recorded parent (a default has no line)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def where(self, path: KeyPath) -> str:
        """``file:line: key.path`` prefix for messages."""
        line = self.line(path)
        return f"{self.file}:{line if line is not None else '?'}: {dotted(path)}"

    def error(self, path: KeyPath, message: str) -> StudyError:
        """An error located at ``path`` (raise it)."""
        return StudyError(
            f"{self.where(path)}: {message}", self.file, self.line(path), dotted(path)
        )


def parse_yaml(text: str, file: str) -> SourceDoc:
    """Parse one YAML document, recording the line of every key and list item.

    Args:
        text: The YAML source.
        file: Display name for messages.

    Raises:
        StudyError: Invalid YAML, a duplicate key or a non-string key, with the line.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise StudyError(f"{file}:{line or '?'}: invalid YAML: {problem}", file, line) from None
    doc = SourceDoc(file=file, data=None)
    if node is not None:
        doc.data = _build(node, (), doc, _Loader(""))
    return doc


def _build(node: yaml.Node, path: KeyPath, doc: SourceDoc, ctor: yaml.SafeLoader) -> Any:
    """Plain value of ``node``; records lines into ``doc.lines`` on the way."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise StudyError(f"{doc.file}:{line}: {dotted(path)}: keys must be plain names")
            key = str(key_node.value)
            if key in out:
                first = doc.lines[(*path, key)]
                raise StudyError(
                    f"{doc.file}:{line}: {dotted((*path, key))}: duplicate key "
                    f"(first at line {first})",
                    doc.file,
                    line,
                    dotted((*path, key)),
                )
            doc.lines[(*path, key)] = line
            out[key] = _build(value_node, (*path, key), doc, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            items.append(_build(item, (*path, i), doc, ctor))
        return items
    return ctor.construct_object(node, deep=True)
