"""The rclpy APIs that differ between the ROS 2 distributions the node runs on.

Humble's rclpy (3.3) lacks three things the node uses on Jazzy and newer:

- ``rclpy.event_handler`` (Humble calls the module ``rclpy.qos_event``);
- the publisher ``matched`` event, which drives lazy input the depth_image_proc way;
  without it the node polls its publishers' subscription counts on a short timer;
- ``Node.add_post_set_parameters_callback``; without it accepted values are applied from
  the on-set callback, once every check has passed.

Each fallback is chosen by feature, never by a distro name, so a backport that adds the
API switches to it by itself. ``DEPTH_ANYTHING_RCLPY_FALLBACKS=1`` forces every fallback
on a newer distro: the test suite runs Humble's paths that way, since no Humble rclpy
can be installed beside the Jazzy one.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Optional

from rclpy.node import Node

try:
    from rclpy.event_handler import PublisherEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import PublisherEventCallbacks

FORCE_FALLBACKS_ENV = "DEPTH_ANYTHING_RCLPY_FALLBACKS"
# Poll period of the subscription counts where matched events are missing: an output's
# first subscriber starts the input within this (plus one frame), its last stops it.
INPUT_POLL_S = 0.25


def fallbacks_forced() -> bool:
    return os.environ.get(FORCE_FALLBACKS_ENV, "") not in ("", "0")


def has_matched_events() -> bool:
    """Whether publishers can report subscriber (un)matching (Iron and newer)."""
    if fallbacks_forced():
        return False
    return "matched" in inspect.signature(PublisherEventCallbacks.__init__).parameters


def has_post_set_callback(node: Node) -> bool:
    """Whether parameters can be applied after they are set (Iron and newer)."""
    return not fallbacks_forced() and hasattr(node, "add_post_set_parameters_callback")


def publisher_events(on_change: Callable[[], None]) -> Optional[Any]:
    """Return event callbacks that call ``on_change`` on every (un)match, where supported.

    None means the caller must poll (``INPUT_POLL_S``).
    """
    if not has_matched_events():
        return None
    return PublisherEventCallbacks(matched=lambda _info: on_change())
