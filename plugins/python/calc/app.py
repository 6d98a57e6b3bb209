"""calc: a magg tool provider with arithmetic, statistics and unit conversion tools.

It is mounted as a server of magg's config (a `.wasm` source) and needs no grants: no
network, no files, no environment. Every call runs in a fresh instance.

Tools:
- `calculate` `{"expression": "2 * (3 + 4) ** 2 / sqrt(7)"}`: evaluates an arithmetic
  expression (numbers, + - * / // % **, parentheses, and the functions and constants of
  FUNCTIONS and CONSTANTS below). Nothing else is evaluated: no names, attributes or calls
  of anything but those functions.
- `statistics` `{"numbers": [1, 2, 3.5]}`: count, sum, mean, median, min, max, and the
  sample standard deviation when there are two numbers or more.
- `convert_units` `{"value": 3, "from": "mi", "to": "km"}`: length, mass, time and
  temperature units.

Built with componentize-py against the `tool-provider-plugin` world of wit/plugin.wit; see
../../build-py-js.sh. Standard library only.
"""

import ast
import json
import math
import statistics as stats
from typing import Any, Dict, List, Optional

import wit_world
from wit_world.exports import tool_provider
from wit_world.imports import magg_plugin_types as types

# The longest expression `calculate` reads, in characters.
MAX_EXPRESSION = 2000
# The largest exponent `**` takes, and the most digits an integer result may have: an
# expression cannot make the call run for long or eat the instance's memory.
MAX_EXPONENT = 10_000
MAX_DIGITS = 4_300

FUNCTIONS = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "cbrt": lambda x: math.copysign(abs(x) ** (1 / 3), x),
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "hypot": math.hypot,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": math.factorial,
    "gcd": math.gcd,
    "degrees": math.degrees,
    "radians": math.radians,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}

# Unit name -> (dimension, factor to the dimension's base unit). Temperatures are handled
# apart, as they are not proportional.
UNITS = {
    # length, base metre
    "mm": ("length", 0.001), "cm": ("length", 0.01), "m": ("length", 1.0),
    "km": ("length", 1000.0), "in": ("length", 0.0254), "ft": ("length", 0.3048),
    "yd": ("length", 0.9144), "mi": ("length", 1609.344), "nmi": ("length", 1852.0),
    # mass, base kilogram
    "mg": ("mass", 1e-6), "g": ("mass", 0.001), "kg": ("mass", 1.0), "t": ("mass", 1000.0),
    "oz": ("mass", 0.028349523125), "lb": ("mass", 0.45359237),
    # time, base second
    "ms": ("time", 0.001), "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0),
    "day": ("time", 86400.0), "week": ("time", 604800.0),
    # temperature (converted by formula)
    "C": ("temperature", None), "F": ("temperature", None), "K": ("temperature", None),
}

NUMBER_SCHEMA = {"type": "number"}

TOOLS = [
    tool_provider.ToolSpec(
        name="calculate",
        title="Calculate",
        description=(
            "Evaluates an arithmetic expression exactly as written and returns its value. "
            "Use it instead of doing arithmetic in your head. Supports + - * / // % ** and "
            "parentheses, the functions " + ", ".join(sorted(FUNCTIONS)) + " and the "
            "constants pi, e, tau and inf. Example: {\"expression\": \"sqrt(2) * 10 ** 3\"}."
        ),
        input_schema=json.dumps({
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "The expression, e.g. `(17 + 4) * 3 / 7` or `log10(1e6)`.",
                    "maxLength": MAX_EXPRESSION,
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {"expression": {"type": "string"}, "value": NUMBER_SCHEMA},
            "required": ["expression", "value"],
        }),
        annotations=json.dumps({
            "readOnlyHint": True, "idempotentHint": True, "openWorldHint": False,
        }),
    ),
    tool_provider.ToolSpec(
        name="statistics",
        title="Descriptive statistics",
        description=(
            "Computes count, sum, mean, median, min, max and (for two numbers or more) the "
            "sample standard deviation of a list of numbers. "
            "Example: {\"numbers\": [3, 1, 4, 1, 5]}."
        ),
        input_schema=json.dumps({
            "type": "object",
            "properties": {
                "numbers": {
                    "type": "array",
                    "items": NUMBER_SCHEMA,
                    "minItems": 1,
                    "description": "The numbers to describe.",
                }
            },
            "required": ["numbers"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {
                name: NUMBER_SCHEMA
                for name in ("count", "sum", "mean", "median", "min", "max", "stdev")
            },
            "required": ["count", "sum", "mean", "median", "min", "max"],
        }),
        annotations=json.dumps({
            "readOnlyHint": True, "idempotentHint": True, "openWorldHint": False,
        }),
    ),
    tool_provider.ToolSpec(
        name="convert_units",
        title="Convert units",
        description=(
            "Converts a value between units of length (mm cm m km in ft yd mi nmi), mass "
            "(mg g kg t oz lb), time (ms s min h day week) or temperature (C F K). "
            "Example: {\"value\": 26.2, \"from\": \"mi\", \"to\": \"km\"}."
        ),
        input_schema=json.dumps({
            "type": "object",
            "properties": {
                "value": {"type": "number", "description": "The amount to convert."},
                "from": {"type": "string", "enum": sorted(UNITS), "description": "Its unit."},
                "to": {"type": "string", "enum": sorted(UNITS), "description": "The unit wanted."},
            },
            "required": ["value", "from", "to"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {"value": NUMBER_SCHEMA, "unit": {"type": "string"}},
            "required": ["value", "unit"],
        }),
        annotations=json.dumps({
            "readOnlyHint": True, "idempotentHint": True, "openWorldHint": False,
        }),
    ),
]


class ToolError(Exception):
    """A failure the model should read: it becomes a result with `is-error` set."""


def _result(value: Dict[str, Any]) -> types.CallResult:
    text = json.dumps(value)
    return types.CallResult(
        content=json.dumps([{"type": "text", "text": text}]),
        structured_content=text,
        is_error=False,
    )


def _error(message: str) -> types.CallResult:
    return types.CallResult(
        content=json.dumps([{"type": "text", "text": message}]),
        structured_content=None,
        is_error=True,
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(f"{what} must be a number, not {json.dumps(value)}")
    return value


def _json_number(value: Any) -> Any:
    """`value` as JSON can hold it: NaN and infinities become strings."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


class _Evaluator:
    """Evaluates the arithmetic subset of Python's expression syntax."""

    OPERATORS = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b,
        ast.FloorDiv: lambda a, b: a // b,
        ast.Mod: lambda a, b: a % b,
    }

    def eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise ToolError(f"unknown name `{node.id}`; constants are: pi, e, tau, inf")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = self.eval(node.operand)
            return value if isinstance(node.op, ast.UAdd) else -value
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Pow):
                if abs(right) > MAX_EXPONENT:
                    raise ToolError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
                if isinstance(left, int) and isinstance(right, int) \
                        and left.bit_length() * right > MAX_DIGITS * 3.33:
                    raise ToolError(f"the result has more than {MAX_DIGITS} digits")
                value = left ** right
            elif type(node.op) in self.OPERATORS:
                value = self.OPERATORS[type(node.op)](left, right)
            else:
                raise ToolError(f"operator {type(node.op).__name__} is not supported")
            if isinstance(value, int) and value.bit_length() > MAX_DIGITS * 3.33:
                raise ToolError(f"the result has more than {MAX_DIGITS} digits")
            return value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            function = FUNCTIONS.get(node.func.id)
            if function is None:
                raise ToolError(
                    f"unknown function `{node.func.id}`; functions are: "
                    + ", ".join(sorted(FUNCTIONS))
                )
            args = [self.eval(arg) for arg in node.args]
            if node.func.id == "factorial" and args and args[0] > 1000:
                raise ToolError("factorial takes at most 1000")
            return function(*args)
        raise ToolError(
            f"`{ast.unparse(node)}` is not arithmetic; use numbers, + - * / // % **, "
            "parentheses and the listed functions"
        )


def calculate(arguments: Dict[str, Any]) -> Dict[str, Any]:
    expression = arguments.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("`expression` must be a non-empty string, e.g. \"2 + 2\"")
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"`expression` is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ToolError(f"`{expression}` is not a valid expression: {e.msg}") from None
    try:
        value = _Evaluator().eval(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (ValueError, OverflowError, TypeError) as e:
        raise ToolError(f"cannot evaluate `{expression}`: {e}") from None
    return {"expression": expression, "value": _json_number(value)}


def describe(arguments: Dict[str, Any]) -> Dict[str, Any]:
    numbers = arguments.get("numbers")
    if not isinstance(numbers, list) or not numbers:
        raise ToolError("`numbers` must be a non-empty array of numbers")
    values = [_number(n, f"numbers[{i}]") for i, n in enumerate(numbers)]
    out = {
        "count": len(values),
        "sum": math.fsum(values),
        "mean": stats.fmean(values),
        "median": stats.median(values),
        "min": min(values),
        "max": max(values),
    }
    if len(values) > 1:
        out["stdev"] = stats.stdev(values)
    return {k: _json_number(v) for k, v in out.items()}


def _to_kelvin(value: float, unit: str) -> float:
    if unit == "C":
        return value + 273.15
    if unit == "F":
        return (value - 32) * 5 / 9 + 273.15
    return value


def _from_kelvin(value: float, unit: str) -> float:
    if unit == "C":
        return value - 273.15
    if unit == "F":
        return (value - 273.15) * 9 / 5 + 32
    return value


def convert(arguments: Dict[str, Any]) -> Dict[str, Any]:
    value = _number(arguments.get("value"), "`value`")
    source, target = arguments.get("from"), arguments.get("to")
    for key, unit in (("from", source), ("to", target)):
        if unit not in UNITS:
            raise ToolError(
                f"`{key}` is {json.dumps(unit)}, not a known unit; known: " + " ".join(UNITS)
            )
    (dimension, factor), (target_dimension, target_factor) = UNITS[source], UNITS[target]
    if dimension != target_dimension:
        raise ToolError(f"cannot convert {dimension} ({source}) to {target_dimension} ({target})")
    if dimension == "temperature":
        result = _from_kelvin(_to_kelvin(value, source), target)
    else:
        result = value * factor / target_factor
    return {"value": round(result, 12), "unit": target}


HANDLERS = {"calculate": calculate, "statistics": describe, "convert_units": convert}


class ToolProvider(wit_world.exports.ToolProvider):
    def list_tools(self) -> List[tool_provider.ToolSpec]:
        return TOOLS

    def call_tool(self, name: str, arguments: str) -> types.CallResult:
        handler = HANDLERS.get(name)
        if handler is None:
            return _error(f"unknown tool `{name}`; this server has: " + ", ".join(HANDLERS))
        try:
            parsed: Optional[Any] = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            return _error(f"the arguments are not JSON: {e}")
        if not isinstance(parsed, dict):
            return _error("the arguments must be a JSON object")
        try:
            return _result(handler(parsed))
        except ToolError as e:
            return _error(str(e))
