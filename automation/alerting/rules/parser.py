"""`parse_rule`: rule text -> `Rule`, or a `DefinitionError` naming the column and what was expected there."""

from __future__ import annotations

import re
from typing import cast

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from automation.alerting.regex import RegexError, compile_regex
from automation.alerting.rules.ast import (
    FUNCTION_NAMES,
    WINDOW_FUNCTIONS,
    And,
    Anomaly,
    CompareOp,
    Comparison,
    Condition,
    HeldFor,
    Instant,
    Not,
    Or,
    Rule,
    Value,
    Windowed,
)
from automation.alerting.rules.grammar import TERMINAL_ORDER, TERMINAL_WORDS, rule_parser, terminal_literals
from automation.alerting.series import Matcher, MatchOp, Selector
from automation.errors import DefinitionError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_FLIPPED: dict[str, CompareOp] = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
# What the text at a position reads as, for "got '...'": a string, an operator, or a word.
_LEXEME = re.compile(r'"(?:\\.|[^"\\\n])*"?|>=|<=|==|!=|=~|!~|[(){},<>=]|[^\s(){},<>=!"]+|\S')


class _RuleError(Exception):
    def __init__(self, column: int, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def parse_rule(text: str, *, field: str = "condition") -> Rule:
    """Parse an alert rule such as `cpu_usage > 80 AND duration > 5m`; errors are reported against `field`
    with the column counted from the start of the text (a rule written over several lines is read as one)."""
    flat = text.replace("\r", " ").replace("\n", " ")
    try:
        if not flat.strip():
            raise _RuleError(1, "empty rule: expected a condition such as cpu_usage > 80")
        try:
            tree = rule_parser().parse(flat)
        except UnexpectedInput as exc:
            raise _syntax_error(flat, exc) from None
        condition = _condition(tree.children[0])
        _check_durations(condition, under_not=None, inside_duration=False)
    except _RuleError as exc:
        raise DefinitionError([(field, f"column {exc.column}: {exc.reason}")]) from None
    return Rule.of(text, condition)


# --- syntax errors -------------------------------------------------------------------------------------


def _syntax_error(text: str, exc: UnexpectedInput) -> _RuleError:
    if isinstance(exc, UnexpectedToken):
        # LALR's expected set merges lookaheads of several contexts; replaying the parser is exact
        replay = exc.interactive_parser
        expected = set(replay.accepts() if replay is not None else exc.expected)  # type: ignore[no-untyped-call]
        if exc.token.type == "$END":
            column, got = len(text.rstrip()) + 1, "the end of the rule"
        else:
            column, got = _column(exc.token.column), f"'{exc.token.value}'"
    elif isinstance(exc, UnexpectedCharacters):
        expected = set(exc.allowed or ())
        column = _column(exc.column)
        found = _LEXEME.match(text, column - 1)
        got = f"'{found.group(0) if found else text[column - 1]}'"
    elif isinstance(exc, UnexpectedEOF):
        expected, column, got = set(exc.expected), len(text.rstrip()) + 1, "the end of the rule"
    else:  # pragma: no cover - lark raises only the three above
        return _RuleError(1, str(exc))
    previous = _previous_lexeme(text, column - 1)
    after = f" after '{previous}'" if previous else ""
    reason = f"expected {_describe(expected)}{after}, got {got}"
    if "NUMBER" in expected and re.fullmatch(r"'(\d+[smhd])+'", got):
        reason += " (a duration is compared only in `duration > 5m`)"
    elif "DURATION" in expected and re.fullmatch(r"'[+-]?[\d.]+'", got):
        reason += " (a duration needs a unit: s, m, h or d)"
    return _RuleError(column, reason)


def _column(value: int | None) -> int:
    return value if value is not None and value > 0 else 1


def _previous_lexeme(text: str, end: int) -> str:
    before = text[:end].rstrip()
    last = ""
    for found in _LEXEME.finditer(before):
        if found.group(0).strip():
            last = found.group(0)
    return last


def _describe(expected: set[str]) -> str:
    if {"NAME", "NUMBER", "_LPAR"} <= expected:
        return "a condition such as cpu_usage > 80"
    if "NAME" in expected:
        expected = expected - {"DURATION_KW"}  # `duration{}` as a metric name is not worth offering
    literals = terminal_literals()
    words: list[str] = []
    for name in sorted(expected, key=lambda n: (TERMINAL_ORDER.index(n) if n in TERMINAL_ORDER else 99, n)):
        word = TERMINAL_WORDS.get(name) or (f"'{literals[name]}'" if name in literals else name)
        if word not in words:
            words.append(word)
    if len(words) <= 1:
        return words[0] if words else "something else"
    return f"{', '.join(words[:-1])} or {words[-1]}"


# --- tree -> conditions --------------------------------------------------------------------------------


def _condition(node: Tree[Token] | Token) -> Condition:
    if not isinstance(node, Tree):  # pragma: no cover - the grammar puts tokens only inside rules
        raise _RuleError(_column(node.column), f"unexpected '{node}'")
    kind = node.data
    if kind == "or_cond":
        return Or(tuple(_condition(child) for child in _trees(node)))
    if kind == "and_cond":
        return And(tuple(_condition(child) for child in _trees(node)))
    if kind == "negation":
        keyword, term = node.children
        return Not(_condition(term), _column(cast(Token, keyword).column))
    if kind == "held_for":
        return _held_for(node)
    if kind in ("comparison", "flipped_comparison"):
        return _comparison(node)
    raise _RuleError(1, f"unexpected {kind}")  # pragma: no cover - every rule of the grammar is handled


def _trees(node: Tree[Token]) -> list[Tree[Token]]:
    return [child for child in node.children if isinstance(child, Tree)]


def _comparison(node: Tree[Token]) -> Comparison:
    first, op_token, last = node.children
    op = cast(CompareOp, str(op_token))
    if node.data == "flipped_comparison":
        number, value_node, op = cast(Token, first), last, _FLIPPED[op]
    else:
        number, value_node = cast(Token, last), first
    value = _value(cast(Tree[Token], value_node))
    return Comparison(value, op, float(number), value.column)


def _held_for(node: Tree[Token]) -> HeldFor:
    keyword, op, amount = (cast(Token, child) for child in node.children)
    if str(op) not in (">", ">="):
        raise _RuleError(
            _column(op.column), f"duration is compared only with > or >= (held for at least), got '{op}'"
        )
    return HeldFor(_seconds(amount), _column(keyword.column))


def _seconds(token: Token) -> float:
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(str(token)))
    if seconds <= 0:
        raise _RuleError(_column(token.column), f"a duration must be positive, got '{token}'")
    return float(seconds)


def _value(node: Tree[Token]) -> Value:
    if node.data == "selector":
        selector = _selector(node)
        return Instant(selector, _column(cast(Token, node.children[0]).column))
    name = cast(Token, node.children[0])
    arguments = [child for child in node.children[1:] if child is not None]
    column = _column(name.column)
    function = str(name)
    if function not in FUNCTION_NAMES:
        raise _RuleError(column, f"unknown function '{function}'; known: {', '.join(FUNCTION_NAMES)}")
    if function == "anomaly":
        if len(arguments) != 1 or not _is_selector(arguments[0]):
            raise _RuleError(column, 'anomaly takes one selector, e.g. anomaly(cpu_usage{service="api"})')
        return Anomaly(_selector(cast(Tree[Token], arguments[0])), column)
    if len(arguments) != 2 or not _is_selector(arguments[0]):
        raise _RuleError(column, f"{function} takes a selector and a window, e.g. {function}(cpu_usage, 5m)")
    window = arguments[1]
    if not (isinstance(window, Token) and window.type == "DURATION"):
        where = _column(window.column) if isinstance(window, Token) else column
        raise _RuleError(where, f"the window of {function} must be a duration such as 5m, got '{window}'")
    assert function in WINDOW_FUNCTIONS
    return Windowed(function, _selector(cast(Tree[Token], arguments[0])), _seconds(window), column)


def _is_selector(node: Tree[Token] | Token) -> bool:
    return isinstance(node, Tree) and node.data == "selector"


def _selector(node: Tree[Token]) -> Selector:
    name, matchers = node.children
    found: list[Matcher] = []
    if isinstance(matchers, Tree):
        for matcher in _trees(matchers):
            label, op, value = (cast(Token, child) for child in matcher.children)
            found.append(
                Matcher(str(label), cast(MatchOp, str(op)), _string(value, regex=str(op) in ("=~", "!~")))
            )
    # a metric named like the keyword is written `duration{}`; the selector keeps its spelling
    return Selector(str(name), tuple(found))


def _string(token: Token, *, regex: bool) -> str:
    """The value of a quoted string; the only escapes are \\" and \\\\. A regex must compile."""
    raw = str(token)[1:-1]
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            escaped = raw[index + 1]
            if escaped not in '"\\':
                raise _RuleError(
                    _column(token.column) + 1 + index,
                    f"unknown escape '\\{escaped}' in a string: only \\\" and \\\\ are allowed",
                )
            out.append(escaped)
            index += 2
        else:
            out.append(char)
            index += 1
    value = "".join(out)
    if regex:
        try:
            compile_regex(value)
        except RegexError as exc:
            raise _RuleError(
                _column(token.column), f"invalid regular expression {token} (RE2): {exc}"
            ) from None
    return value


# --- where duration may stand ---------------------------------------------------------------------------


def _check_durations(condition: Condition, *, under_not: Not | None, inside_duration: bool) -> None:
    """`duration > D` is a conjunct of an AND (one per AND), never under NOT, never inside the condition
    another duration clause applies to (each would multiply the other's work)."""
    if isinstance(condition, HeldFor):
        raise _RuleError(
            condition.column,
            "duration must be joined with AND to the condition it applies to, "
            "e.g. cpu_usage > 80 AND duration > 5m",
        )
    if isinstance(condition, Not):
        _check_durations(condition.term, under_not=condition, inside_duration=inside_duration)
    elif isinstance(condition, Or):
        for term in condition.terms:
            _check_durations(term, under_not=under_not, inside_duration=inside_duration)
    elif isinstance(condition, And):
        clauses = [term for term in condition.terms if isinstance(term, HeldFor)]
        if len(clauses) > 1:
            raise _RuleError(clauses[1].column, "only one duration clause per AND")
        if clauses and under_not is not None:
            raise _RuleError(under_not.column, "NOT cannot apply to a condition with a duration clause")
        if clauses and inside_duration:
            raise _RuleError(
                clauses[0].column,
                "a duration clause cannot be inside the condition another duration clause applies to",
            )
        for term in condition.terms:
            if not isinstance(term, HeldFor):
                _check_durations(term, under_not=under_not, inside_duration=inside_duration or bool(clauses))
