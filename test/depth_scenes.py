"""Ray-cast scenes of planes and boxes with exactly known depth, for the alignment tests.

The scene frame is a level camera's optical frame (x right, y down, z forward, origin at the
camera), so a floor h below the camera is the plane y = h. A camera or a LiDAR is placed by
the rotation whose columns are its axes in scene coordinates and by its position.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence, Union

import numpy as np

from depth_anything_ros.geometry.intrinsics import Intrinsics

VGA = Intrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)


@dataclass(frozen=True)
class Plane:
    """The points p with normal . p = offset; seen from the side the rays start on."""

    normal: tuple[float, float, float]
    offset: float


@dataclass(frozen=True)
class Box:
    """A solid axis-aligned box between corners ``low`` and ``high``."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]


Shape = Union[Plane, Box]


def _plane_hit(plane: Plane, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    normal = np.array(plane.normal)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (plane.offset - normal @ origin) / (directions @ normal)
    return np.where(t > 0, t, np.inf)


def _box_hit(box: Box, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Return the entry distance along each ray (slab method); inf where it misses."""
    with np.errstate(divide="ignore", invalid="ignore"):
        first = (np.array(box.low) - origin) / directions
        second = (np.array(box.high) - origin) / directions
    enter = np.nanmax(np.minimum(first, second), axis=1)
    leave = np.nanmin(np.maximum(first, second), axis=1)
    return np.where((enter <= leave) & (enter > 0), enter, np.inf)


def cast(shapes: Sequence[Shape], origin: np.ndarray,
         directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distance (in units of each direction's length) to the first hit and its shape.

    The shape index is -1 and the distance NaN where a ray hits nothing.
    """
    origin = np.asarray(origin, np.float64)
    directions = np.asarray(directions, np.float64)
    hits = np.stack([_plane_hit(s, origin, directions) if isinstance(s, Plane)
                     else _box_hit(s, origin, directions) for s in shapes])
    label = np.argmin(hits, axis=0)
    distance = hits[label, np.arange(directions.shape[0])]
    missed = ~np.isfinite(distance)
    label[missed] = -1
    distance[missed] = np.nan
    return distance, label


def camera_rotation(pitch_deg: float = 0.0, roll_deg: float = 0.0,
                    yaw_deg: float = 0.0) -> np.ndarray:
    """Return the camera's axes (columns) in the scene for a physically described mounting.

    Yaw turns the camera to its right about the vertical; pitch then tips its optical axis
    down below the horizon; roll then turns it about the optical axis so that its right side
    (+x) goes down.
    """
    yaw, pitch, roll = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    ahead_level = np.array([math.sin(yaw), 0.0, math.cos(yaw)])
    down = np.array([0.0, 1.0, 0.0])
    forward = math.cos(pitch) * ahead_level + math.sin(pitch) * down
    below = math.cos(pitch) * down - math.sin(pitch) * ahead_level
    x_axis = math.cos(roll) * right + math.sin(roll) * below
    y_axis = math.cos(roll) * below - math.sin(roll) * right
    return np.stack([x_axis, y_axis, forward], axis=1)


def render(shapes: Sequence[Shape], intrinsics: Intrinsics = VGA,
           rotation: np.ndarray = np.eye(3),
           position: Sequence[float] = (0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Return the depth z (H, W) float32 metres and shape index (H, W) a camera sees."""
    u = (np.arange(intrinsics.width) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(intrinsics.height) - intrinsics.cy) / intrinsics.fy
    rays = np.empty((intrinsics.height, intrinsics.width, 3))
    rays[..., 0] = u[np.newaxis, :]
    rays[..., 1] = v[:, np.newaxis]
    rays[..., 2] = 1.0
    # Rays with z = 1 in the camera: the distance along them is the depth z.
    distance, label = cast(shapes, np.asarray(position), rays.reshape(-1, 3) @ rotation.T)
    shape = (intrinsics.height, intrinsics.width)
    return distance.reshape(shape).astype(np.float32), label.reshape(shape)


def room() -> list[Shape]:
    """Return a 4.2 x 2.5 x 6.5 m room, camera 1.2 m above the floor, with a table."""
    return [Plane((0.0, 1.0, 0.0), 1.2), Plane((0.0, -1.0, 0.0), 1.3),
            Plane((-1.0, 0.0, 0.0), 1.8), Plane((1.0, 0.0, 0.0), 2.4),
            Plane((0.0, 0.0, 1.0), 5.5), Plane((0.0, 0.0, -1.0), 1.0),
            Box((-1.2, 0.45, 2.2), (0.3, 1.2, 3.0))]


def corridor() -> list[Shape]:
    """Return a 2 m wide, 2.5 m high corridor ending 25 m ahead, camera 1.2 m high."""
    return [Plane((0.0, 1.0, 0.0), 1.2), Plane((0.0, -1.0, 0.0), 1.3),
            Plane((-1.0, 0.0, 0.0), 1.0), Plane((1.0, 0.0, 0.0), 1.0),
            Plane((0.0, 0.0, 1.0), 25.0)]


def floor_with_boxes(camera_height: float) -> list[Shape]:
    """Return a floor ``camera_height`` below the camera, a wall 8 m ahead and five boxes.

    Index 0 is the floor, 1 the wall, 2.. the boxes.
    """
    h = camera_height
    return [Plane((0.0, 1.0, 0.0), h), Plane((0.0, 0.0, 1.0), 8.0),
            Box((-0.9, h - 0.35, 1.6), (-0.4, h, 2.0)),
            Box((0.2, h - 0.25, 1.3), (0.55, h, 1.6)),
            Box((-0.35, h - 0.6, 2.6), (0.45, h, 3.2)),
            Box((0.9, h - 0.5, 2.0), (1.6, h, 2.6)),
            Box((-2.2, h - 0.4, 3.0), (-1.2, h, 4.0))]
