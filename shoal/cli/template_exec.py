"""Runs a parsed ``--format`` template on plain data, printing values the way Go's templates do.

Data is what the CLI prints as JSON (dicts, lists, str, int, float, bool, None). Values print as
Go prints an ``interface{}`` decoded from that JSON: ``map[a:1 b:2]``, ``[x y]``, ``true``,
``<no value>`` for a missing map key. The functions are docker's (``json``, ``join``, ``split``,
``lower``, ``upper``, ``title``, ``pad``, ``truncate``, ``println``) plus Go's builtins people use
(``index``, ``len``, ``eq``/``ne``/``lt``/``le``/``gt``/``ge``, ``and``/``or``/``not``,
``print``/``printf``). In strict mode (list commands, whose rows all have the same keys) a field
that does not exist is an error naming the fields that do, as docker's typed rows make it. Given the
field names its objects can have (``known``: inspect output leaves empty fields out, as docker's JSON
does), a name that is none of them is an error too, as docker's inspect makes it (``map has no entry
for key``), except below a map of the user's own keys (``.Spec.Labels.nope`` is ``<no value>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from shoal.cli.template import Action, Branch, Cmd, Node, Operand, Pipe, TemplateError, Text

NO_VALUE = "<no value>"
USER_MAPS = frozenset({"Labels", "Options", "Sysctls", "DriverOpts", "Containers", "Annotations"})
"""Fields whose keys are the user's (docker types them as maps): a missing key there is no error."""


def go_str(v: Any) -> str:
    """``fmt.Sprint`` of a JSON-decoded value."""
    if v is None:
        return NO_VALUE
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def truthy(v: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, lists and maps are false."""
    return bool(v) if v is not None else False


def _json(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k)
        elif isinstance(v, (list, tuple, str)) and isinstance(k, int):
            if not 0 <= k < len(v):
                raise TemplateError(f"template: index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"template: can't index item of type {_type(v)}")
    return v


def _len(v: Any) -> int:
    if isinstance(v, (str, list, tuple, dict)):
        return len(v)
    raise TemplateError(f"template: len of type {_type(v)}")


def _type(v: Any) -> str:
    return {dict: "map", list: "list", str: "string", bool: "bool", int: "int", float: "float"}.get(type(v), "nil")


def _sprint(*args: Any) -> str:
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(a)
    return out


_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d+))?([vsdqtfxX%])")


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        if verb in "dxX" and isinstance(a, (int, float)) and not isinstance(a, bool):
            text = format(int(a), {"d": "d", "x": "x", "X": "X"}[verb])
        elif verb == "f" and isinstance(a, (int, float)):
            text = f"{a:.{prec or 6}f}"
        elif verb == "q":
            text = json.dumps(go_str(a), ensure_ascii=False)
        else:
            text = go_str(a)
            if prec and verb == "s":
                text = text[: int(prec)]
        w = int(width or 0)
        return text.ljust(w) if "-" in flags else text.rjust(w)

    return _VERB.sub(one, fmt)


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def fn(a: Any, b: Any) -> bool:
        try:
            return op(a, b)
        except TypeError:
            raise TemplateError(f"template: incompatible types for comparison: {_type(a)} and {_type(b)}") from None

    return fn


def _truncate(s: Any, n: int) -> str:
    text = go_str(s)
    return text if len(text) < n else text[:n]


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": lambda items, sep: sep.join(go_str(x) for x in (items or [])),
    "split": lambda s, sep: go_str(s).split(sep) if sep else list(go_str(s)),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: re.sub(r"\b\w", lambda m: m.group().upper(), go_str(s)),
    "pad": lambda s, left, right: " " * left + go_str(s) + " " * right,
    "truncate": _truncate,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": _sprint,
    "printf": _printf,
    "index": _index,
    "len": _len,
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": _cmp(lambda a, b: a != b),
    "lt": _cmp(lambda a, b: a < b),
    "le": _cmp(lambda a, b: a <= b),
    "gt": _cmp(lambda a, b: a > b),
    "ge": _cmp(lambda a, b: a >= b),
    "not": lambda a: not truthy(a),
}


class Executor:
    """Runs one parsed template; ``strict`` makes an unknown field an error instead of ``<no value>``,
    ``known`` (the field names the objects can have) one that is none of them."""

    def __init__(self, strict: bool = False, known: frozenset[str] | None = None) -> None:
        self.strict = strict
        self.known = known

    def render(self, nodes: list[Node], data: Any) -> str:
        out: list[str] = []
        self._run(nodes, data, [{"$": data}], out)
        return "".join(out)

    def _run(self, nodes: list[Node], dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Action):
                value = self._pipe(node.pipe, dot, scopes)
                if not node.pipe.decl:
                    out.append(go_str(value))
            elif isinstance(node, Branch):
                self._branch(node, dot, scopes, out)

    def _branch(self, node: Branch, dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        inner = [*scopes, {}]
        if node.kind == "range":
            self._range(node, dot, inner, out)
            return
        value = self._pipe(node.pipe, dot, inner)
        if truthy(value):
            self._run(node.body, value if node.kind == "with" else dot, inner, out)
        else:
            self._run(node.alt, dot, [*scopes, {}], out)

    def _range(self, node: Branch, dot: Any, scopes: list[dict[str, Any]], out: list[str]) -> None:
        value = self._pipe(Pipe(node.pipe.cmds, (), node.pipe.src), dot, scopes)
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif value is None:
            pairs = []
        else:
            raise TemplateError(f"template: range can't iterate over {go_str(value)}")
        if not pairs:
            self._run(node.alt, dot, scopes, out)
        for key, item in pairs:
            names = node.pipe.decl
            if len(names) == 1:
                scopes[-1][names[0]] = item
            elif len(names) == 2:
                scopes[-1][names[0]], scopes[-1][names[1]] = key, item
            self._run(node.body, item, scopes, out)

    def _pipe(self, pipe: Pipe, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        value: Any = None
        for i, cmd in enumerate(pipe.cmds):
            value = self._cmd(cmd, dot, scopes, value, piped=i > 0)
        if len(pipe.decl) == 1:
            scopes[-1][pipe.decl[0]] = value
        return value

    def _cmd(self, cmd: Cmd, dot: Any, scopes: list[dict[str, Any]], prev: Any, piped: bool) -> Any:
        head, *rest = cmd.operands
        if head.kind == "ident":
            return self._call(head, [self._operand(o, dot, scopes) for o in rest] + ([prev] if piped else []))
        if rest or piped:
            raise TemplateError(f"template: can't give argument to non-function {head.src}")
        return self._operand(head, dot, scopes)

    def _call(self, head: Operand, args: list[Any]) -> Any:
        name = str(head.value)
        if name in ("and", "or"):
            if not args:
                raise TemplateError(f"template: wrong number of args for {name}")
            for a in args:
                if truthy(a) != (name == "and"):
                    return a
            return args[-1]
        fn = FUNCS.get(name)
        if fn is None:
            raise TemplateError(f'template: function "{name}" not defined')
        try:
            return fn(*args)
        except TypeError:
            raise TemplateError(f"template: wrong arguments for {name}: {', '.join(go_str(a) for a in args) or 'none'}") from None

    def _operand(self, op: Operand, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        if op.kind == "field":
            return self._fields(dot, op.names, op.src)
        if op.kind == "var":
            for scope in reversed(scopes):
                if op.value in scope:
                    return self._fields(scope[op.value], op.names, op.src)
            raise TemplateError(f'template: undefined variable "{op.value}"')
        if op.kind == "pipe":
            assert isinstance(op.value, Pipe)
            return self._fields(self._pipe(op.value, dot, scopes), op.names, op.src)
        if op.kind == "ident":
            return self._call(op, [])
        return op.value

    def _unknown(self, name: str, parent: str) -> bool:
        return self.known is not None and name not in self.known and parent not in USER_MAPS

    def _fields(self, value: Any, names: tuple[str, ...], src: str) -> Any:
        for i, name in enumerate(names):
            if isinstance(value, dict):
                if name not in value and self.strict:
                    known = ", ".join(sorted(str(k) for k in value))
                    raise TemplateError(f'template: at <{src}>: no field "{name}" (fields: {known})')
                if name not in value and self._unknown(name, names[i - 1] if i else ""):
                    raise TemplateError(f'template: at <{src}>: map has no entry for key "{name}"')
                value = value.get(name)
            elif value is None and i:
                raise TemplateError(f"template: at <{src}>: nil pointer evaluating .{name}")
            else:
                raise TemplateError(f"template: at <{src}>: can't evaluate field {name} in type {_type(value)}")
        return value
