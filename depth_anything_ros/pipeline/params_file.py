"""The node's parameters without ROS: a ROS 2 params file and ``-p name:=value`` overrides.

Tools that run the node's pipeline on recorded data take the node's own configuration,
so a params file written for a robot (config/depth.yaml) works unchanged, and a value
the node would refuse is refused here in the node's words: the types rclpy enforces (an
integer where a float is declared is an error, not a conversion), the descriptor ranges,
then the table's own rules (``parameters.problems``), first failure first, as the node
declares them.

The file is read the way rcl reads one: top-level keys name nodes (``/**/depth_anything``,
``/front/depth_anything``, ``depth_anything`` for ``/depth_anything``, ``/**`` for every
node; ``*`` stands for one namespace token and ``**`` for any number), each holding
``ros__parameters``; nested mappings become dotted names; every section whose key matches
applies, later ones over earlier ones, and ``-p`` overrides over all of them. Values are
YAML scalars and lists, typed as rcl types them (a plain ``1e3`` or ``-.5`` is a float
and ``~`` a string, where PyYAML would say otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
import difflib
import math
from pathlib import Path
import re
from typing import Any, Iterable, Iterator, Optional, Sequence

import yaml

from depth_anything_ros.pipeline.parameters import (FIELDS, NodeParams, ParameterError, problems,
                                                    type_name)

NODE_NAME = "depth_anything"
SECTION = "ros__parameters"
# Parameters every rclpy node has, and the QoS overrides of its topics: not ours to check.
ROS_OWN = ("use_sim_time", "start_type_description_service")
ROS_OWN_PREFIXES = ("qos_overrides.",)


# rcl types a plain scalar as the first of these it fully matches (strtoll with base 0,
# then strtod, then YAML's .inf/.nan), else as a string; quoted scalars are strings.
_BOOLS = {**dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"), True),
          **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"),
                          False)}
_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|inf|infinity|nan)",
                    re.IGNORECASE)
_YAML_FLOAT = {".inf": math.inf, ".Inf": math.inf, ".INF": math.inf, "-.inf": -math.inf,
               "-.Inf": -math.inf, "-.INF": -math.inf, ".nan": math.nan, ".NaN": math.nan,
               ".NAN": math.nan}


def _scalar(text: str, quoted: bool) -> Any:
    if quoted:
        return text
    if not text:
        raise ValueError("a parameter has no value")
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        digits = text.lstrip("+-")
        base = 16 if digits[:2] in ("0x", "0X") else 8 if digits[:1] == "0" else 10
        return (-1 if text[0] == "-" else 1) * int(digits, base)
    if _FLOAT.fullmatch(text):
        return float(text)
    return _YAML_FLOAT.get(text.lstrip("+"), text)


def _value(node: yaml.Node) -> Any:
    """Return a composed YAML node as rcl reads it."""
    if isinstance(node, yaml.MappingNode):
        return {_value(key): _value(value) for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_value(item) for item in node.value]
    return _scalar(node.value, node.style in ("'", '"'))


def _load(text: str) -> Any:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return None if node is None else _value(node)


def unknown_name(name: str) -> str:
    """Return ``'name'``, with the closest real parameter name when one is close.

    rclpy drops values for parameters a node does not have without a word, so a
    misspelt key would leave the robot on a default the user believes they changed;
    the node and the tools name it this way instead.
    """
    close = difflib.get_close_matches(name, FIELDS, n=1)
    return f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")


def parse_value(text: str) -> Any:
    """Return a value as ROS types it on the command line (``-p name:=value``): as YAML."""
    try:
        return _load(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"cannot parse value {text!r}: {exc}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``name:=value`` into the name and its typed value."""
    name, sep, value = text.partition(":=")
    if not sep or not name.strip():
        raise ValueError(f"-p takes name:=value (e.g. -p colormap:=gray), got {text!r}")
    return name.strip(), parse_value(value)


def _flatten(values: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _sections(doc: dict, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """(node name, its ros__parameters) for every section, nested namespace keys joined."""
    for key, value in doc.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}/{str(key).strip('/')}"
        if SECTION in value:
            if not isinstance(value[SECTION], dict):
                raise ValueError(f"'{name}: {SECTION}' must be a mapping of parameter names")
            yield name, dict(_flatten(value[SECTION]))
        else:
            yield from _sections(value, name)


def read_params_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Return the sections of a ROS 2 params file in file order; ValueError if unusable."""
    try:
        doc = _load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise ValueError(f"cannot read params file {path}: {reason}") from None
    sections = list(_sections(doc)) if isinstance(doc, dict) else []
    if not sections:
        raise ValueError(f"params file {path} has no '<node name>: {SECTION}:' section "
                         "(see config/depth.yaml)")
    return sections


def node_matches(pattern: str, fqn: str) -> bool:
    """Whether a params-file node key applies to the node named ``fqn`` (e.g. /front/x)."""
    want = [part for part in pattern.split("/") if part]
    have = [part for part in fqn.split("/") if part]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and want[i] in ("*", have[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _typed(name: str, value: Any) -> Any:
    """Return ``value`` as the table holds it, or raise the node's wrong-type error."""
    default = FIELDS[name].default
    if isinstance(default, tuple):
        # The table's arrays: of strings (an empty default is one) or of floats.
        item = str if not default or isinstance(default[0], str) else float
        ok = isinstance(value, (list, tuple)) and all(type(v) is item for v in value)
        typed = tuple(value) if ok else None
    elif isinstance(default, bool):
        ok, typed = isinstance(value, bool), value
    elif isinstance(default, int):
        ok, typed = isinstance(value, int) and not isinstance(value, bool), value
    else:
        ok, typed = isinstance(value, type(default)), value
    if not ok:
        raise ParameterError(name, f"has the wrong type; expected {type_name(default)}")
    return typed


def _check_range(name: str, value: Any) -> None:
    """Refuse a value outside the descriptor range as rclpy does at declaration."""
    value_range = FIELDS[name].metadata["range"]
    if value_range is None:
        return
    low, high = value_range
    if not (low <= value <= high or (isinstance(value, float) and (
            math.isclose(value, low) or math.isclose(value, high)))):
        raise ParameterError(name, f"is out of range; must be within [{low}, {high}]")


@dataclass(frozen=True)
class LoadedParams:
    """A node's validated parameters, what set them, and what was not ours."""

    params: NodeParams
    given: frozenset[str]          # set by the file or -p; the rest kept their defaults
    sections: tuple[str, ...]      # the params-file sections that applied
    unknown: tuple[str, ...]       # names this node does not have, as ``unknown_name`` words


def validated(values: dict[str, Any], sections: Sequence[str] = ()) -> LoadedParams:
    """Check values as the node does, in its declaration order; raise the first problem."""
    chosen = {}
    for name in FIELDS:
        if name in values:
            chosen[name] = _typed(name, values[name])
            _check_range(name, chosen[name])
    params = NodeParams(**chosen)
    found = problems(params)
    if found:
        raise found[0]
    unknown = tuple(unknown_name(name) for name in sorted(values)
                    if name not in FIELDS and name not in ROS_OWN
                    and not name.startswith(ROS_OWN_PREFIXES))
    return LoadedParams(params, frozenset(chosen), tuple(sections), unknown)


class ParamsSource:
    """A params file and ``-p`` overrides, read once, resolved per node name."""

    def __init__(self, params_file: Optional[Path] = None,
                 overrides: Iterable[str] = ()) -> None:
        self.path = params_file
        self._sections = read_params_file(params_file) if params_file is not None else []
        self._overrides = dict(parse_override(text) for text in overrides)
        self.overridden = frozenset(self._overrides)   # names given with -p

    def for_node(self, fqn: str) -> LoadedParams:
        """Return the parameters of the node named ``fqn``, validated; ParameterError if not."""
        values: dict[str, Any] = {}
        applied = []
        for key, section in self._sections:
            if node_matches(key, fqn):
                values.update(section)
                applied.append(key)
        values.update(self._overrides)
        return validated(values, applied)
