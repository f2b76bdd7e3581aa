"""Node conditions: a small safe expression language, parsed once and evaluated per run. No eval.

Grammar: literals (numbers, quoted strings, true/false/null in either case, [lists]),
`{{ node.path }}` references (their value, with its type), `== != < <= > >=`, `in`, `not in`,
`and`, `or`, `not`, parentheses. Inside quoted strings, references are interpolated as text.
An unresolved reference evaluates to null.
"""

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows import templating

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<ref>\{\{\s*[A-Za-z_][\w-]*(?:\.[\w-]+)*\s*\}\})
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
  | (?P<word>[A-Za-z_]\w*)
    """,
    re.VERBOSE,
)
CONSTANTS = {
    "true": True,
    "false": False,
    "null": None,
    "none": None,
}
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}
MAX_LENGTH = 4096
# Parentheses, `not` and list brackets recurse; bounded so a 4 KiB condition cannot exhaust the stack.
MAX_NESTING = 32


class ConditionError(ValueError):
    """The condition cannot be parsed, or cannot be evaluated on these values."""


@dataclass(frozen=True)
class Condition:
    """A parsed condition: evaluate it against a scope of node outputs and `params`."""

    source: str
    tree: tuple
    references: frozenset[str]

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        try:
            return bool(_evaluate(self.tree, scope))
        except TypeError as exc:
            raise ConditionError(f"cannot evaluate {self.source!r}: {exc}") from None


def compile_condition(source: str) -> Condition:
    """Parse `source`; raises ConditionError naming the problem."""
    if not isinstance(source, str) or not source.strip():
        raise ConditionError("condition must be a non-empty string")
    if len(source) > MAX_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokenize(source))
    tree = parser.expression()
    if parser.peek() is not None:
        raise ConditionError(f"unexpected {parser.peek()[1]!r} in condition {source!r}")
    return Condition(source, tree, frozenset(templating.referenced_roots(source)))


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(source):
        match = TOKEN.match(source, position)
        if not match:
            raise ConditionError(f"unexpected character {source[position]!r} in condition")
        position = match.end()
        kind = match.lastgroup
        if kind != "space":
            tokens.append((kind, match.group()))
    return tokens


class _Parser:
    """Recursive descent over the token list; builds nested tuples."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ConditionError("condition ends unexpectedly")
        self.index += 1
        return token

    def nested(self, parse: Callable[[], tuple]) -> tuple:
        if self.depth >= MAX_NESTING:
            raise ConditionError(f"condition is nested more than {MAX_NESTING} levels deep")
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def at_op(self, op: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "op" and token[1] == op

    def expression(self) -> tuple:
        left = self.conjunction()
        while self.at_word("or"):
            self.take()
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> tuple:
        left = self.negation()
        while self.at_word("and"):
            self.take()
            left = ("and", left, self.negation())
        return left

    def negation(self) -> tuple:
        if self.at_word("not"):
            self.take()
            return ("not", self.nested(self.negation))
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.primary()
        token = self.peek()
        if token is None:
            return left
        if token[0] == "op" and token[1] in COMPARISONS:
            self.take()
            return ("cmp", token[1], left, self.primary())
        if self.at_word("in"):
            self.take()
            return ("cmp", "in", left, self.primary())
        if self.at_word("not"):
            self.take()
            if not self.at_word("in"):
                raise ConditionError("expected 'in' after 'not'")
            self.take()
            return ("cmp", "not in", left, self.primary())
        return left

    def primary(self) -> tuple:
        kind, text = self.take()
        if kind == "ref":
            return ("ref", templating.EXPRESSION.fullmatch(text).group(1))
        if kind == "string":
            return ("text", _unquote(text))
        if kind == "number":
            return ("const", float(text) if any(c in text for c in ".eE") else int(text))
        if kind == "word" and text.lower() in CONSTANTS:
            return ("const", CONSTANTS[text.lower()])
        if kind == "op" and text == "(":
            inner = self.nested(self.expression)
            if not self.at_op(")"):
                raise ConditionError("missing ')' in condition")
            self.take()
            return inner
        if kind == "op" and text == "[":
            items = []
            while not self.at_op("]"):
                items.append(self.nested(self.primary))
                if self.at_op(","):
                    self.take()
                elif not self.at_op("]"):
                    raise ConditionError("expected ',' or ']' in list")
            self.take()
            return ("list", tuple(items))
        if kind == "word":
            raise ConditionError(f"unknown name {text!r} in condition (quote strings)")
        raise ConditionError(f"unexpected {text!r} in condition")


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _evaluate(node: tuple, scope: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "ref":
        found = templating.lookup(node[1], scope)
        return None if found is templating.MISSING else found
    if kind == "text":
        return templating.interpolate(node[1], scope)
    if kind == "list":
        return [_evaluate(item, scope) for item in node[1]]
    if kind == "not":
        return not _evaluate(node[1], scope)
    if kind == "and":
        return _evaluate(node[1], scope) and _evaluate(node[2], scope)
    if kind == "or":
        return _evaluate(node[1], scope) or _evaluate(node[2], scope)
    return COMPARISONS[node[1]](_evaluate(node[2], scope), _evaluate(node[3], scope))
