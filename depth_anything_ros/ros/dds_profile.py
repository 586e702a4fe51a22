"""The node's own Fast DDS profile, applied only where the user has none.

Our outputs are large (a 480x640 xyzrgb cloud is 9.4 MB) and Fast DDS sends samples over
shared memory only when they fit the sender's segment, 0.5 MiB by default; anything
larger goes through UDP fragments, which cost 13 ms for a single 0.9 MB image here
against 2.1 ms through a 32 MiB segment. Only the sender's segment matters, so the
profile changes nothing for subscribers. It must be in the environment before
``rclpy.init`` creates the DDS participant, hence a function ``main`` calls first.
"""

from __future__ import annotations

from importlib import resources
from typing import MutableMapping, Optional

PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
OPT_OUT_VARIABLE = "DEPTH_ANYTHING_DDS_PROFILE"   # "none": leave DDS as configured
FAST_DDS_RMW = "rmw_fastrtps_cpp"                  # the ROS 2 default
PROFILE_FILE = "fastdds_large_outputs.xml"


def apply_default_profile(environ: MutableMapping[str, str]) -> Optional[str]:
    """Point Fast DDS at our profile unless another RMW, a user profile or the opt-out is set.

    Returns the line to log, None when nothing was changed.
    """
    if environ.get(OPT_OUT_VARIABLE, "").lower() == "none":
        return None
    if environ.get("RMW_IMPLEMENTATION", FAST_DDS_RMW) != FAST_DDS_RMW:
        return None
    if any(environ.get(name) for name in PROFILE_VARIABLES):
        return None
    path = str(resources.files(__package__).joinpath(PROFILE_FILE))
    environ[PROFILE_VARIABLES[0]] = path
    return (f"Fast DDS: using {path} (32 MiB shared-memory segment, so large outputs skip "
            f"UDP fragmentation); set {PROFILE_VARIABLES[0]} to your own profile, or "
            f"{OPT_OUT_VARIABLE}=none, to keep your DDS settings")
