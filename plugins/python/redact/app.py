"""redact: a magg routing hook that blanks out secrets in tool results.

Before a call it always lets the call proceed. After a call it replaces every match of a
secret pattern in the result's text content blocks (and, when it holds a match, in the
structured content) with `[redacted]`, and returns the rewritten result; when nothing
matched it returns none, so the result goes on unchanged.

Setting `patterns`: a JSON array of extra regular expressions (Python `re` syntax); a plain
string is taken as one expression.

Built with componentize-py against the `routing-hook-plugin` world of wit/plugin.wit; see
../../build-py-js.sh. Standard library only.
"""

import json
import re

# Imported here so it is in the build-time snapshot: the component cannot load a module
# that was not imported at build time, and `re` imports `warnings` lazily when a pattern
# deserves a warning.
import warnings
from typing import Optional

import wit_world
from wit_world.exports import routing_hook
from wit_world.imports import host, types

REPLACEMENT = "[redacted]"

# Common secret shapes. Compiled at build time: componentize-py snapshots the module after
# import, so each call starts with these ready.
DEFAULT_PATTERNS = [
    # OpenAI / Anthropic style API keys (sk-..., sk-proj-..., sk-ant-...).
    r"\bsk-[A-Za-z0-9_-]{16,}",
    # GitHub tokens: personal (ghp_), OAuth (gho_), user/server/refresh (ghu_, ghs_, ghr_).
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    # GitHub fine-grained personal access tokens.
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    # AWS access key ids.
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    # Slack tokens.
    r"\bxox[baprs]-[A-Za-z0-9-]{10,}",
    # The token of an HTTP `Bearer` credential (the word itself is kept).
    r"(?i:(?<=\bbearer ))[A-Za-z0-9._~+/-]{16,}=*",
]

DEFAULT_REGEXES = [re.compile(p) for p in DEFAULT_PATTERNS]


def _log(level, message):
    host.log(level, message)


def _extra_regexes():
    """The regexes of setting `patterns`; bad entries are logged and skipped."""
    raw = host.setting("patterns")
    if raw is None or not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        # Not JSON: a config string holding one expression.
        value = [raw]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        _log(types.LogLevel.WARN, "setting `patterns` should be a JSON array of regexes; ignored")
        return []
    regexes = []
    for pattern in value:
        if not isinstance(pattern, str):
            _log(types.LogLevel.WARN, f"setting `patterns`: {pattern!r} is not a string; skipped")
            continue
        # Warnings (e.g. "possible nested set") go to magg's log, not to stderr.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                regexes.append(re.compile(pattern))
            except re.error as err:
                _log(types.LogLevel.WARN, f"setting `patterns`: bad regex {pattern!r} ({err}); skipped")
        for warning in caught:
            _log(types.LogLevel.WARN, f"setting `patterns`: {pattern!r}: {warning.message}")
    return regexes


class _Redactor:
    def __init__(self, regexes):
        self.regexes = regexes
        self.count = 0

    def text(self, text):
        """`text` with every match replaced; counts the replacements."""
        for regex in self.regexes:
            text, n = regex.subn(REPLACEMENT, text)
            self.count += n
        return text

    def json_value(self, value):
        """A copy of a JSON value with every string in it redacted (object keys are kept)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json_value(v) for k, v in value.items()}
        return value


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _redact_content(redactor, content):
    """The content array as text with its text blocks redacted, or None when none changed."""
    try:
        blocks = json.loads(content)
    except ValueError:
        _log(types.LogLevel.WARN, "result content is not JSON; left as it is")
        return None
    if not isinstance(blocks, list):
        _log(types.LogLevel.WARN, "result content is not a JSON array; left as it is")
        return None
    before = redactor.count
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            block["text"] = redactor.text(block["text"])
    if redactor.count == before:
        return None
    return _dumps(blocks)


def _redact_structured(redactor, structured):
    """The structured content as text, redacted, or None when it held no match."""
    try:
        value = json.loads(structured)
    except ValueError:
        _log(types.LogLevel.WARN, "structured content is not JSON; left as it is")
        return None
    before = redactor.count
    value = redactor.json_value(value)
    if redactor.count == before:
        return None
    return _dumps(value)


class RoutingHook(wit_world.exports.RoutingHook):
    def before_call(self, call: types.ToolCall) -> routing_hook.Decision:
        return routing_hook.Decision_Proceed()

    def after_call(
        self, call: types.ToolCall, result: types.CallResult
    ) -> Optional[types.CallResult]:
        try:
            return _after_call(call, result)
        except Exception as err:
            # The component has no stderr (see README.md): say what went wrong in magg's
            # log, then let the exception trap; magg handles a failed hook.
            _log(types.LogLevel.ERROR, f"redact failed on the result of {call.tool}: {err!r}")
            raise


def _after_call(call, result):
    redactor = _Redactor(DEFAULT_REGEXES + _extra_regexes())
    content = _redact_content(redactor, result.content)
    structured = None
    if result.structured_content is not None:
        structured = _redact_structured(redactor, result.structured_content)
    if content is None and structured is None:
        return None
    _log(
        types.LogLevel.INFO,
        f"redacted {redactor.count} secret(s) in the result of {call.tool}",
    )
    return types.CallResult(
        content=result.content if content is None else content,
        structured_content=result.structured_content if structured is None else structured,
        is_error=result.is_error,
    )
