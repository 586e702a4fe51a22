"""The node's parameters on rclpy: declared with descriptors, validated, kept as a snapshot.

The table itself (defaults, descriptions, ranges, rules) is ROS-free in
``pipeline.parameters``; this module turns it into declarations and guards changes.
Everything read per frame may change live. Parameters marked ``reload`` configure the
engine, subscriptions or timers: a change is accepted only while the lifecycle node is
unconfigured and is applied by the next configure.
"""

from __future__ import annotations

import array
import dataclasses
import os
from typing import Any, Callable, Optional

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from depth_anything_ros.pipeline.parameters import (FIELDS, NodeParams, ParameterError, problems,
                                                    type_name)
from depth_anything_ros.pipeline.params_file import unknown_name
from depth_anything_ros.ros.compat import has_post_set_callback

PACKAGE = "depth_anything_ros"
RELOAD_NOTE = " (applied at configure: change it while the node is unconfigured)"


def descriptor(name: str) -> ParameterDescriptor:
    meta = FIELDS[name].metadata
    text = meta["description"] + (RELOAD_NOTE if meta["reload"] else "")
    desc = ParameterDescriptor(name=name, description=text)
    if meta["choices"] is not None:
        desc.additional_constraints = "one of: " + ", ".join(repr(c) for c in meta["choices"])
    low_high = meta["range"]
    if low_high is not None:
        low, high = low_high
        if isinstance(FIELDS[name].default, int):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return desc


def effective_model_path(model_path: str) -> str:
    """Return the path the engine should load: ``model_path``, or the package's models folder."""
    if model_path:
        return os.path.expanduser(model_path)
    from ament_index_python.packages import get_package_share_directory
    try:
        share = get_package_share_directory(PACKAGE)
    except (LookupError, OSError):
        raise ParameterError(
            "model_path", f"is empty and package '{PACKAGE}' is not installed in a sourced "
            "workspace, so there is no default models folder; pass "
            "-p model_path:=/path/to/model.xml") from None
    return os.path.join(share, "models")


def _plain(value: Any) -> Any:
    """Return array values (rclpy gives lists or array.array) as the table's tuples."""
    if isinstance(value, (list, tuple, array.array)):
        return tuple(v if isinstance(v, str) else float(v) for v in value)
    return value


def unknown_overrides(node: Node) -> list[str]:
    """Values given for parameters this node does not have, e.g. a misspelt YAML key.

    rclpy drops them without a word; a robot then runs with a default the user believes
    they changed. (``_parameter_overrides`` is the only place rclpy keeps them.)
    """
    given = getattr(node, "_parameter_overrides", {})
    lines = []
    for name in sorted(given):
        if node.has_parameter(name) or name.startswith("qos_overrides."):
            continue
        lines.append(unknown_name(name))
    return lines


class ParameterStore:
    """Declares the node's parameters and keeps a validated snapshot of their values.

    The inference thread reads ``current`` once per frame; replacing the frozen
    snapshot is a single reference swap, so it never sees half an update.
    """

    def __init__(self, node: Node,
                 on_change: Optional[Callable[[NodeParams, NodeParams], None]] = None,
                 reload_allowed: Callable[[], bool] = lambda: False) -> None:
        """Declare every parameter and validate the start values.

        Raises ParameterError naming the first bad parameter. The validating callback
        is registered only after declaring, because rclpy runs on-set callbacks for
        each declaration and cross-parameter rules would see half-declared state.
        ``reload_allowed`` says whether ``reload`` parameters may change now (the
        lifecycle node: while unconfigured); by default they never may.
        """
        self._node = node
        self._on_change = on_change
        self._reload_allowed = reload_allowed
        values = {}
        for name, field in FIELDS.items():
            try:
                # An empty array has no type of its own; say which it is.
                start = Parameter.Type.STRING_ARRAY if field.default == () else field.default
                value = node.declare_parameter(name, start, descriptor(name)).value
                values[name] = field.default if value is None else _plain(value)
            except InvalidParameterTypeException:
                raise ParameterError(
                    name, f"has the wrong type; expected {type_name(field.default)}") from None
            except InvalidParameterValueException:
                low, high = field.metadata["range"]
                raise ParameterError(
                    name, f"is out of range; must be within [{low}, {high}]") from None
        params = NodeParams(**values)
        found = problems(params)
        if found:
            raise found[0]
        self.current = params
        self.unknown = unknown_overrides(node)
        self._apply_when_valid = not has_post_set_callback(node)
        node.add_on_set_parameters_callback(self._validate)
        if not self._apply_when_valid:
            node.add_post_set_parameters_callback(self._apply)

    def _changes(self, parameters: list[Parameter]) -> dict[str, Any]:
        return {p.name: _plain(p.value) for p in parameters if p.name in FIELDS}

    def _validate(self, parameters: list[Parameter]) -> SetParametersResult:
        changes = self._changes(parameters)
        if not changes:
            return SetParametersResult(successful=True)
        frozen = [name for name, value in changes.items()
                  if FIELDS[name].metadata["reload"] and value != getattr(self.current, name)]
        if frozen and not self._reload_allowed():
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(frozen)} read-only while the node is configured: applied at "
                "configure, so change it while unconfigured (lifecycle deactivate and "
                "cleanup first) or restart the node"))
        found = problems(dataclasses.replace(self.current, **changes))
        if found:
            return SetParametersResult(successful=False, reason="; ".join(str(e) for e in found))
        if self._apply_when_valid:
            # Humble: no post-set callback. This is the node's only on-set callback, so an
            # accepted change is set right after it returns; applying it here is the same.
            self._apply(parameters)
        return SetParametersResult(successful=True)

    def _apply(self, parameters: list[Parameter]) -> None:
        changes = self._changes(parameters)
        if not changes:
            return
        previous = self.current
        self.current = dataclasses.replace(previous, **changes)
        if self._on_change is not None:
            self._on_change(previous, self.current)
