"""The distro fallbacks of ros/compat.py choose by feature, and each one really runs here.

Humble's rclpy cannot be installed beside this one, so its paths are forced on the newer
rclpy (``DEPTH_ANYTHING_RCLPY_FALLBACKS``, or a blocked module) and must behave as the
primary ones: test_node_lifecycle runs lazy input by polling alone and test_node_params
applies parameters without the post-set callback, both with the same assertions as the
primary path.
"""

from __future__ import annotations

import subprocess
import sys

import rclpy
from rclpy.context import Context
from rclpy.node import Node

from depth_anything_ros.ros import compat

# rclpy itself imports event_handler, so load rclpy first, then leave an empty module in its
# place: the name compat imports is missing, as on Humble.
IMPORT_AS_ON_HUMBLE = """
import sys, types, warnings
import rclpy.node
warnings.simplefilter("ignore", DeprecationWarning)
import rclpy.qos_event
sys.modules["rclpy.event_handler"] = types.ModuleType("rclpy.event_handler")
from depth_anything_ros.ros import compat
print(compat.PublisherEventCallbacks.__module__, compat.has_matched_events())
"""


def test_the_event_callbacks_import_falls_back_to_humbles_module():
    run = subprocess.run([sys.executable, "-c", IMPORT_AS_ON_HUMBLE], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # Jazzy's qos_event re-exports event_handler's class, which has matched events.
    assert run.stdout.split() == ["rclpy.event_handler", "True"]


def test_this_rclpy_takes_the_primary_paths_unless_forced(monkeypatch):
    context = Context()
    rclpy.init(context=context)
    node = Node("compat_probe", context=context)
    try:
        monkeypatch.delenv(compat.FORCE_FALLBACKS_ENV, raising=False)
        assert compat.has_matched_events()
        assert compat.has_post_set_callback(node)
        assert compat.publisher_events(lambda: None) is not None
        monkeypatch.setenv(compat.FORCE_FALLBACKS_ENV, "1")
        assert not compat.has_matched_events()
        assert not compat.has_post_set_callback(node)
        assert compat.publisher_events(lambda: None) is None
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
