"""A parser for the part of Go's text/template that people pass to docker's ``--format``.

Scripts written for docker say ``--format '{{.Name}}'``, ``'{{json .Spec}}'``,
``'{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}} {{end}}'`` or ``'{{if .Leader}}*{{end}}'``;
this module turns such a string into a small tree (text, actions, if/range/with with else and
``else if``, pipelines with ``|``, parenthesised pipelines, variables, string/number/bool literals,
``{{- trim -}}`` markers and ``{{/* comments */}}``). ``template_exec`` runs the tree on plain
data (dicts, lists, strings, numbers). Anything outside that subset (``define``, ``template``,
``block``...) is refused by name, never half-run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Branch", "Cmd", "Operand", "Pipe", "TemplateError", "Text", "parse"]


class TemplateError(ValueError):
    """A template that cannot be parsed or run; the message names what is wrong and where."""


@dataclass(frozen=True)
class Operand:
    """One word of a command: ``kind`` is field|var|str|num|bool|nil|ident|pipe."""

    kind: str
    value: object = None  # the literal, the function name, the variable name or the nested Pipe
    names: tuple[str, ...] = ()  # field chain after the dot or the variable
    src: str = ""


@dataclass(frozen=True)
class Cmd:
    operands: tuple[Operand, ...]


@dataclass(frozen=True)
class Pipe:
    cmds: tuple[Cmd, ...]
    decl: tuple[str, ...] = ()  # variables declared with ``:=``
    src: str = ""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Action:
    pipe: Pipe


@dataclass
class Branch:
    kind: str  # if | range | with
    pipe: Pipe
    body: list = field(default_factory=list)
    alt: list = field(default_factory=list)


Node = Text | Action | Branch

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<str>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    |(?P<decl>:=)
    |(?P<assign>=)
    |(?P<bar>\|)
    |(?P<lp>\()
    |(?P<rp>\))
    |(?P<comma>,)
    |(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
    |(?P<dot>\.)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_UNSUPPORTED = {"define", "template", "block", "break", "continue"}


def _unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]
    try:
        return tok[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"template: bad string literal {tok}: {exc.reason}") from None


def _lex(src: str) -> list[tuple[str, object]]:
    """Split ``src`` into ("text", str) and ("action", [tokens]) items, applying trim markers."""
    items: list[tuple[str, object]] = []
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            items.append(("text", src[pos:]))
            return items
        text = src[pos:start]
        pos = start + 2
        if re.match(r"-\s", src[pos:pos + 2]):
            text = text.rstrip()
            pos += 1
        items.append(("text", text))
        if re.compile(r"\s*/\*").match(src, pos):
            end = src.find("*/", pos)
            close = re.compile(r"\s*(-?)}}").match(src, end + 2) if end >= 0 else None
            if close is None:
                raise TemplateError(f"template: unclosed comment at offset {start}")
            pos = close.end()
            if close.group(1):
                pos = _skip_space(src, pos)
            continue
        tokens, pos, trim = _lex_action(src, pos, start)
        items.append(("action", tokens))
        if trim:
            pos = _skip_space(src, pos)


def _skip_space(src: str, pos: int) -> int:
    while pos < len(src) and src[pos].isspace():
        pos += 1
    return pos


def _lex_action(src: str, pos: int, start: int) -> tuple[list[tuple[str, str]], int, bool]:
    tokens: list[tuple[str, str]] = []
    while True:
        trim = re.compile(r"\s+-}}").match(src, pos)
        if trim:
            return tokens, trim.end(), True
        if src.startswith("}}", pos):
            return tokens, pos + 2, False
        m = _TOKEN.match(src, pos)
        if m is None:
            if pos >= len(src):
                raise TemplateError(f"template: unclosed action starting at offset {start}")
            raise TemplateError(f"template: unexpected {src[pos]!r} in action at offset {pos}")
        kind = m.lastgroup or ""
        if kind == "field" and tokens and tokens[-1][0] == "rp" and src[pos - 1] == ")":
            kind = "chain"  # (pipeline).Field, written without a space
        if kind != "ws":
            tokens.append(("str" if kind == "raw" else kind, m.group()))
        pos = m.end()


class _Parser:
    def __init__(self, items: list[tuple[str, object]]) -> None:
        self.items = items
        self.i = 0

    def parse_list(self, inside: str | None) -> tuple[list[Node], str, list[tuple[str, str]]]:
        """Nodes up to an ``{{else}}``/``{{end}}`` (when ``inside`` a branch) or the end of input."""
        nodes: list[Node] = []
        while self.i < len(self.items):
            kind, value = self.items[self.i]
            self.i += 1
            if kind == "text":
                if value:
                    nodes.append(Text(str(value)))
                continue
            tokens = list(value)  # type: ignore[call-overload]  # a non-text item holds its token list, not a str
            if not tokens:
                raise TemplateError("template: missing value for command in {{}}")
            word = tokens[0][1] if tokens[0][0] == "ident" else ""
            if word in ("else", "end"):
                if inside is None:
                    raise TemplateError(f"template: unexpected {{{{{word}}}}}")
                return nodes, word, tokens[1:]
            if word in _UNSUPPORTED:
                raise TemplateError(f"template: {{{{{word}}}}} is not supported by shoal's --format")
            if word in ("if", "range", "with"):
                nodes.append(self.parse_branch(word, tokens[1:]))
            else:
                nodes.append(Action(parse_pipe(tokens)))
        if inside is not None:
            raise TemplateError(f"template: unexpected end of template: {{{{{inside}}}}} has no {{{{end}}}}")
        return nodes, "", []

    def parse_branch(self, kind: str, tokens: list[tuple[str, str]]) -> Branch:
        if not tokens:
            raise TemplateError(f"template: missing value for {kind}")
        branch = Branch(kind, parse_pipe(tokens))
        branch.body, term, rest = self.parse_list(kind)
        if term == "else":
            if rest and rest[0] == ("ident", "if") or rest and rest[0] == ("ident", "with"):
                branch.alt = [self.parse_branch(rest[0][1], rest[1:])]  # the nested branch takes the {{end}}
                return branch
            if rest:
                raise TemplateError("template: unexpected words after {{else}}")
            branch.alt, term, rest = self.parse_list(kind)
            if term != "end":
                raise TemplateError(f"template: {{{{{kind}}}}} has two {{{{else}}}}")
        if rest:
            raise TemplateError("template: unexpected words after {{end}}")
        return branch


def parse_pipe(tokens: list[tuple[str, str]]) -> Pipe:
    """A pipeline: optional ``$a, $b :=`` then commands separated by ``|``."""
    src = " ".join(t for _, t in tokens)
    decl: tuple[str, ...] = ()
    for n in (2, 4):
        if len(tokens) >= n and tokens[n - 1][0] == "decl":
            names = tokens[: n - 1 : 2]
            if all(k == "var" and "." not in t for k, t in names) and all(k == "comma" for k, _ in tokens[1 : n - 2 : 2]):
                decl = tuple(t for _, t in names)
                tokens = tokens[n:]
                break
    cmds: list[Cmd] = []
    ops: list[Operand] = []
    i = 0
    while i < len(tokens):
        kind, tok = tokens[i]
        if kind == "bar":
            if not ops:
                raise TemplateError(f"template: missing command before | in {{{{{src}}}}}")
            cmds.append(Cmd(tuple(ops)))
            ops = []
            i += 1
            continue
        op, i = _operand(tokens, i, src)
        ops.append(op)
    if not ops:
        raise TemplateError(f"template: missing command in {{{{{src}}}}}")
    cmds.append(Cmd(tuple(ops)))
    return Pipe(tuple(cmds), decl, src)


def _operand(tokens: list[tuple[str, str]], i: int, src: str) -> tuple[Operand, int]:
    kind, tok = tokens[i]
    if kind == "lp":
        depth, j = 1, i + 1
        while j < len(tokens) and depth:
            depth += {"lp": 1, "rp": -1}.get(tokens[j][0], 0)
            j += 1
        if depth:
            raise TemplateError(f"template: unclosed ( in {{{{{src}}}}}")
        inner = parse_pipe(tokens[i + 1 : j - 1])
        names: tuple[str, ...] = ()
        if j < len(tokens) and tokens[j][0] == "chain":
            names = tuple(tokens[j][1].split(".")[1:])
            j += 1
        return Operand("pipe", inner, names, src=f"({inner.src})"), j
    if kind == "field":
        return Operand("field", None, tuple(tok.split(".")[1:]), tok), i + 1
    if kind == "dot":
        return Operand("field", None, (), tok), i + 1
    if kind == "var":
        name, *chain = tok.split(".")
        return Operand("var", name, tuple(chain), tok), i + 1
    if kind == "str":
        return Operand("str", _unquote(tok), src=tok), i + 1
    if kind == "num":
        value: object = float(tok) if any(c in tok for c in ".eE") else int(tok)
        return Operand("num", value, src=tok), i + 1
    if kind == "ident":
        if tok in ("true", "false"):
            return Operand("bool", tok == "true", src=tok), i + 1
        if tok == "nil":
            return Operand("nil", None, src=tok), i + 1
        return Operand("ident", tok, src=tok), i + 1
    raise TemplateError(f"template: unexpected {tok!r} in {{{{{src}}}}}")


def parse(src: str) -> list[Node]:
    """Parse a template; raises ``TemplateError`` naming the first thing wrong."""
    nodes, _, _ = _Parser(_lex(src)).parse_list(None)
    return nodes
