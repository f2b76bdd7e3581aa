"""JSON parsing that turns pathological input into a 400 naming where it is, instead of a crash.

Python's parser accepts what PostgreSQL's JSON types refuse (NaN, Infinity, numbers that overflow
to infinity such as 1e400) and silently keeps the last of duplicate keys. The hooks below cost
one cheap call per float and per object (a 1,000-node DAG parses in about 1.5 ms more); they
mark what is wrong, and only a body with a mark is walked again, to name its path.
"""

import json
import math
import re
import sys

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class JSONInputError(ParseError):
    """A parse error at a known place in the body; `details` names it for the error shape."""

    def __init__(self, message: str, path: str):
        super().__init__(f"JSON parse error - {message}")
        self.details = {"path": path} if path else {}


class _Unstorable:
    """Stands in for a number that has no JSON value PostgreSQL can store."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _DuplicateKeys(dict):
    """An object that repeated a key (the last value kept, as json does); `key` is the first repeat."""

    __slots__ = ("key",)


class _Marks:
    """What the hooks of one parse found; `found` stays False for every sound body."""

    def __init__(self):
        self.found = False

    def parse_float(self, text: str):
        value = float(text)
        if math.isinf(value):
            self.found = True
            return _Unstorable(text)
        return value

    def parse_constant(self, text: str):
        self.found = True
        return _Unstorable(text)

    def object_pairs(self, pairs: list) -> dict:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        self.found = True
        marked, seen = _DuplicateKeys(obj), set()
        for key, _ in pairs:
            if key in seen:
                marked.key = key
                break
            seen.add(key)
        return marked


def parse_json(text: str):
    """Parse a request body; ParseError for malformed JSON, JSONInputError naming the path of the
    first unstorable number or duplicate key."""
    marks = _Marks()
    try:
        data = json.loads(
            text,
            parse_float=marks.parse_float,
            parse_constant=marks.parse_constant,
            object_pairs_hook=marks.object_pairs,
        )
    except RecursionError:
        raise ParseError("JSON parse error - nesting is too deep") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # more digits than sys.get_int_max_str_digits()
            raise ParseError(
                f"JSON parse error - an integer has more than {sys.get_int_max_str_digits()} digits"
            ) from None
        raise ParseError(f"JSON parse error - {exc}") from None
    if marks.found:
        _raise_for_first_mark(data)
    return data


def _raise_for_first_mark(data) -> None:
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Unstorable):
            raise JSONInputError(f"{_where(path)} is {value.text}: numbers must be finite", path)
        if isinstance(value, _DuplicateKeys):
            raise JSONInputError(f"duplicate key {value.key!r} in {_where(path)}", path)
        if isinstance(value, dict):
            stack.extend((item, _child(path, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in reversed(list(enumerate(value))))


def _child(path: str, key: str) -> str:
    if not PLAIN_KEY.fullmatch(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    return path or "the request body"


class SafeJSONParser(JSONParser):
    """DRF's JSON parser with the checks of `parse_json`. (DRF's also let RecursionError, from
    absurdly deep nesting, escape as a 500.) The body size is Django's to check: DRF reads JSON
    bodies through `request.body`, which refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE bytes."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return parse_json(text)
