"""The grammar of alert rules (lark, LALR with its contextual lexer) and the parser built from it once."""

from __future__ import annotations

from functools import cache

from lark import Lark

# Keywords outrank names (priority 2) and must end where a name would: `notable` is a name, `not x` is NOT.
# A duration token needs a unit and a number must not be followed by one, so `x > 5m` and `duration > 5`
# fail on the token itself, with the expected kind named.
GRAMMAR = r"""
start: or_cond

?or_cond: and_cond (_OR and_cond)*
?and_cond: not_cond (_AND not_cond)*
?not_cond: atom
         | NOT not_cond                      -> negation
?atom: comparison
     | held_for
     | _LPAR or_cond _RPAR

comparison: value COMP NUMBER
          | NUMBER COMP value                -> flipped_comparison
held_for: DURATION_KW COMP DURATION

?value: selector
      | call
selector: NAME [matchers]
        | DURATION_KW matchers
matchers: _LBRACE [matcher (_COMMA matcher)* [_COMMA]] _RBRACE
matcher: LABEL MATCH_OP STRING
call: NAME _LPAR [argument (_COMMA argument)*] _RPAR
?argument: selector
         | DURATION
         | NUMBER

AND.2: /and(?![a-zA-Z0-9_:])/i
OR.2: /or(?![a-zA-Z0-9_:])/i
NOT.2: /not(?![a-zA-Z0-9_:])/i
DURATION_KW.2: /duration(?![a-zA-Z0-9_:])/i
_AND: AND
_OR: OR
NAME: /[a-zA-Z_:][a-zA-Z0-9_:]*/
LABEL: /[a-zA-Z_][a-zA-Z0-9_]*/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(?![a-zA-Z0-9_.:])/
DURATION: /(\d+[smhd])+(?![a-zA-Z0-9_.:])/
STRING: /"(\\.|[^"\\\n])*"/
COMP: />=|<=|==|!=|>|</
MATCH_OP: /=~|!~|!=|=/
_LPAR: "("
_RPAR: ")"
_LBRACE: "{"
_RBRACE: "}"
_COMMA: ","

%ignore /\s+/
"""

#: How an expected terminal reads in an error message; literal terminals read as themselves.
TERMINAL_WORDS = {
    "NAME": "a metric or function name",
    "LABEL": "a label name",
    "NUMBER": "a number",
    "DURATION": "a duration such as 5m or 1h30m",
    "STRING": 'a quoted string such as "api"',
    "COMP": "a comparison (>, >=, <, <=, ==, !=)",
    "MATCH_OP": "a label matcher (=, !=, =~, !~)",
    "AND": "AND",
    "_AND": "AND",
    "OR": "OR",
    "_OR": "OR",
    "NOT": "NOT",
    "DURATION_KW": "duration",
    "$END": "the end of the rule",
}

#: The order expected terminals are listed in, most telling first.
TERMINAL_ORDER = (
    "NUMBER",
    "DURATION",
    "COMP",
    "NAME",
    "LABEL",
    "MATCH_OP",
    "STRING",
    "NOT",
    "DURATION_KW",
    "_LPAR",
    "_LBRACE",
    "_AND",
    "AND",
    "_OR",
    "OR",
    "_COMMA",
    "_RBRACE",
    "_RPAR",
    "$END",
)


@cache
def rule_parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=True)


def terminal_literals() -> dict[str, str]:
    """Terminal name -> its literal text, for the terminals that are one fixed string."""
    return {t.name: t.pattern.value for t in rule_parser().terminals if t.pattern.type == "str"}
