"""``--format`` as docker takes it: ``table``, ``json``, a Go template, or ``table`` + a template.

Every list and inspect command goes through here, so ``--format '{{.Name}}'`` and
``--format 'table {{.ID}}\\t{{.Name}}'`` mean the same everywhere. As docker does, ``\\t`` and
``\\n`` typed literally in the template become a tab and a newline; a ``table`` template prints a
header row (the field names, upper-cased and split at capitals: ``.DesiredState`` -> ``DESIRED
STATE``) and lines its tab-separated cells up like docker's tabwriter. The template is parsed once,
before anything is printed, so a bad one is one error and no output.

    fmt = Format.parse("table {{.ID}}\\t{{.Name}}")      # raises TemplateError
    print(fmt.render_list(records), end="")

The template engine (template.py, template_exec.py) is imported by the first ``Format.parse``: a list
command run without a template (``shoal svc ls``) does not pay for loading it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.cli.template import Node, Operand, Pipe, TemplateError

__all__ = ["Format", "TemplateError", "header_name", "is_template", "tabwrite"]

MIN_WIDTH = 10
PADDING = 3


def __getattr__(name: str) -> Any:
    if name == "TemplateError":  # re-exported, from the engine loaded on demand
        from shoal.cli.template import TemplateError

        return TemplateError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_template(fmt: str | None) -> bool:
    """Whether ``fmt`` is a template rather than one of the plain words ``table``/``json``/empty."""
    return bool(fmt) and str(fmt).strip().lower() not in ("table", "json")


def header_name(field: str) -> str:
    """``DesiredState`` -> ``DESIRED STATE``, ``ID`` -> ``ID`` (docker's column headers)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", field).upper()


def tabwrite(text: str) -> str:
    """Lay out tab-separated cells as docker's tabwriter (minwidth 10, padding 3) does."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    for cells in lines:
        for i, cell in enumerate(cells[:-1]):  # the text after the last tab is not a column
            w = max(MIN_WIDTH, len(cell) + PADDING)
            if i == len(widths):
                widths.append(w)
            else:
                widths[i] = max(widths[i], w)
    out = ["".join(c.ljust(widths[i]) for i, c in enumerate(cells[:-1])) + cells[-1] for cells in lines]
    return "\n".join(line.rstrip() for line in out)


@dataclass(frozen=True)
class Format:
    """A parsed ``--format`` template."""

    nodes: list[Node]
    table: bool
    source: str

    @classmethod
    def parse(cls, fmt: str) -> Format:
        """Parse ``fmt`` (``table`` prefix allowed); raises ``TemplateError`` naming what is wrong."""
        from shoal.cli.template import TemplateError, parse

        text = fmt.strip()
        table = text[:5].lower() == "table" and (len(text) == 5 or text[5].isspace())
        if table:
            text = text[5:].strip(" ")
        text = text.replace("\\t", "\t").replace("\\n", "\n")
        if not text.strip():
            raise TemplateError(f"template: empty format {fmt!r}")
        nodes = parse(text)
        _check_functions(nodes)
        return cls(nodes, table, fmt)

    def render(self, data: Any, strict: bool = False, known: frozenset[str] | None = None) -> str:
        """The template applied to one object (no newline added); see ``Executor`` for ``strict``/``known``."""
        from shoal.cli.template_exec import Executor

        return Executor(strict, known).render(self.nodes, data)

    def render_list(self, records: Sequence[Mapping[str, Any]], headers: Mapping[str, str] | None = None) -> str:
        """One line per record (strict: every record has the same fields), with a header for ``table``.

        Returns the whole text ending in a newline (empty when there is nothing to print)."""
        from shoal.cli.template_exec import Executor

        lines = [self.render(r, strict=True) for r in records]
        if not self.table:
            return "".join(line + "\n" for line in lines)
        keys: Iterable[str] = records[0].keys() if records else _field_names(self.nodes)
        names = {k: (headers or {}).get(k, header_name(k)) for k in keys}
        head = Executor(strict=False).render(self.nodes, names)
        return tabwrite("\n".join([head, *lines])) + "\n"

    def render_each(self, objects: Iterable[Any], known: Collection[str] | None = None) -> str:
        """``inspect --format``: the template applied to each object, one per line. With ``known`` (the
        field names such objects have; the object's own are added) a field that is none is an error."""
        return "".join(self.render(o, known=None if known is None else frozenset(known) | keys_in(o)) + "\n" for o in objects)


def keys_in(data: Any) -> frozenset[str]:
    """Every dict key at any depth of ``data`` (JSON-like)."""
    out: set[str] = set()
    todo = [data]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            out.update(str(k) for k in v)
            todo.extend(v.values())
        elif isinstance(v, (list, tuple)):
            todo.extend(v)
    return frozenset(out)


def _operands(nodes: list[Node]) -> Iterator[Operand]:
    """Every operand of every pipeline in the tree, nested pipelines included."""
    from shoal.cli.template import Action, Branch, Pipe

    def pipe(p: Pipe) -> Iterator[Operand]:
        for cmd in p.cmds:
            for op in cmd.operands:
                yield op
                if op.kind == "pipe" and isinstance(op.value, Pipe):
                    yield from pipe(op.value)

    for n in nodes:
        if isinstance(n, Action):
            yield from pipe(n.pipe)
        elif isinstance(n, Branch):
            yield from pipe(n.pipe)
            yield from _operands(n.body)
            yield from _operands(n.alt)


def _check_functions(nodes: list[Node]) -> None:
    from shoal.cli.template import TemplateError
    from shoal.cli.template_exec import FUNCS

    for op in _operands(nodes):
        if op.kind == "ident" and op.value not in FUNCS and op.value not in ("and", "or"):
            raise TemplateError(f'template: function "{op.value}" not defined')


def _field_names(nodes: list[Node]) -> list[str]:
    """The top-level field names a template mentions on its dot (for a table header over no rows)."""
    return list(dict.fromkeys(op.names[0] for op in _operands(nodes) if op.kind == "field" and op.names))
