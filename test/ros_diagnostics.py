"""Reading the node's /diagnostics the way a monitor would: one status per camera, by name.

The node publishes one DiagnosticStatus per camera every ``diagnostics_period``, named
after its node and camera (``status_name``), with the counts and settings as key-value
pairs. ``DiagnosticsReader`` keeps every status it receives, in arrival order.
"""

from __future__ import annotations

from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from ros_harness import Client

NODE_NAME = "depth_anything"


def status_name(namespace: str, camera: str = "") -> str:
    """Return the name of the status of ``camera`` ('' for a single-camera node)."""
    node = f"{namespace.strip('/')}/{NODE_NAME}".lstrip("/")
    return f"{node}: {camera} depth estimation" if camera else f"{node}: depth estimation"


def values_of(status: Optional[DiagnosticStatus]) -> dict[str, str]:
    """Return the status's key-value pairs ({} for no status)."""
    return {} if status is None else {kv.key: kv.value for kv in status.values}


class DiagnosticsReader:
    """Every status the client receives on /diagnostics, by status name."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._statuses: dict[str, list[DiagnosticStatus]] = {}
        client.node.create_subscription(DiagnosticArray, "/diagnostics", self._got, 50)

    def _got(self, array: DiagnosticArray) -> None:
        for status in array.status:
            self._statuses.setdefault(status.name, []).append(status)

    def names(self) -> set[str]:
        return set(self._statuses)

    def statuses(self, name: str) -> list[DiagnosticStatus]:
        """Return every status named ``name`` so far, oldest first."""
        return list(self._statuses.get(name, []))

    def count(self, name: str) -> int:
        return len(self._statuses.get(name, []))

    def latest(self, name: str) -> Optional[DiagnosticStatus]:
        found = self._statuses.get(name)
        return found[-1] if found else None

    def values(self, name: str) -> dict[str, str]:
        """Return the newest status's key-value pairs ({} before the first report)."""
        return values_of(self.latest(name))

    def wait(self, name: str, done: Callable[[dict[str, str]], bool] = lambda values: True,
             timeout_s: float = 20.0, tick: Optional[Callable[[], None]] = None,
             period_s: float = 0.05) -> dict[str, str]:
        """Spin until a report sent after this call satisfies ``done``; return its values.

        Only the newest report is looked at, so the values returned are current.
        """
        seen = self.count(name)

        def ready() -> bool:
            return self.count(name) > seen and done(self.values(name))

        assert self.client.spin_until(ready, timeout_s, tick=tick, period_s=period_s), (
            name, self.values(name))
        return self.values(name)
