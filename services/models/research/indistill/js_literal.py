"""Reads the object or string literal a bundled JavaScript module exports (`module.exports=…`), as nsfwjs ships
its Keras model JSON and base64 weight shards, without running JavaScript. Minified literals use
unquoted keys, `!0`/`!1` for booleans and numbers such as `.5`, so this is a small literal parser, not JSON."""

from __future__ import annotations

import json
import re
from typing import Any

_KEY = re.compile(r"[A-Za-z_$][\w$]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Browserify's bundle: `{1:[function(require, module, exports){module.exports=…` (names minified).
_MODULE_EXPORT = re.compile(r"\{1:\[function\(\w+,(\w+),\w+\)\{\1\.exports=")
_CONSTANTS = (("!0", True), ("!1", False), ("true", True), ("false", False), ("null", None))


class JsLiteralError(ValueError):
    """The module does not export a literal this reader understands."""


class _Reader:
    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.pos = start

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _peek(self) -> str:
        self._skip()
        if self.pos >= len(self.text):
            raise JsLiteralError("the literal ends early")
        return self.text[self.pos]

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise JsLiteralError(f"expected {char!r} at offset {self.pos}, found {self.text[self.pos:self.pos + 20]!r}")
        self.pos += 1

    def _string(self) -> str:
        match = _STRING.match(self.text, self.pos)
        if match is None:
            raise JsLiteralError(f"unterminated string at offset {self.pos}")
        self.pos = match.end()
        return json.loads(match.group(0))

    def value(self) -> Any:
        char = self._peek()
        if char == "{":
            return self._object()
        if char == "[":
            return self._array()
        if char == '"':
            return self._string()
        for token, constant in _CONSTANTS:
            if self.text.startswith(token, self.pos):
                self.pos += len(token)
                return constant
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise JsLiteralError(f"unexpected {self.text[self.pos:self.pos + 20]!r} at offset {self.pos}")
        self.pos = match.end()
        number = match.group(0)
        return float(number) if any(c in number for c in ".eE") else int(number)

    def _object(self) -> dict[str, Any]:
        self._expect("{")
        out: dict[str, Any] = {}
        while self._peek() != "}":
            if self._peek() == '"':
                key = self._string()
            else:
                match = _KEY.match(self.text, self.pos)
                if match is None:
                    raise JsLiteralError(f"expected a key at offset {self.pos}")
                key, self.pos = match.group(0), match.end()
            self._expect(":")
            out[key] = self.value()
            if self._peek() == ",":
                self.pos += 1
        self.pos += 1
        return out

    def _array(self) -> list[Any]:
        self._expect("[")
        out: list[Any] = []
        while self._peek() != "]":
            out.append(self.value())
            if self._peek() == ",":
                self.pos += 1
        self.pos += 1
        return out


def exported_literal(source: str) -> Any:
    """The literal a browserify bundle's first module assigns to `module.exports`."""
    match = _MODULE_EXPORT.search(source)
    if match is None:
        raise JsLiteralError("the file is not a bundled module exporting a literal (no `module.exports=`)")
    return _Reader(source, match.end()).value()
