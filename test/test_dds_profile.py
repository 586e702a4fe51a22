"""The node's Fast DDS profile: applied only when the user has none, and a valid file."""

from pathlib import Path
import xml.etree.ElementTree as ElementTree

from depth_anything_ros.ros.dds_profile import (apply_default_profile, OPT_OUT_VARIABLE,
                                                PROFILE_VARIABLES)

NS = {"dds": "http://www.eprosima.com"}


def test_applied_to_a_plain_environment_and_names_how_to_opt_out():
    env: dict[str, str] = {}
    note = apply_default_profile(env)
    path = Path(env[PROFILE_VARIABLES[0]])
    assert path.is_file() and str(path) in note and OPT_OUT_VARIABLE in note
    root = ElementTree.parse(path).getroot()
    segment = root.find(".//dds:transport_descriptor[dds:type='SHM']/dds:segment_size", NS)
    assert int(segment.text) == 32 * 1024 * 1024
    # Still reachable over the network: UDP stays among the transports.
    assert root.find(".//dds:transport_descriptor[dds:type='UDPv4']", NS) is not None


def test_left_alone_with_a_user_profile_another_rmw_or_the_opt_out():
    for env in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"},
                {"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"},
                {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
                {OPT_OUT_VARIABLE: "none"}):
        before = dict(env)
        assert apply_default_profile(env) is None
        assert env == before
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert apply_default_profile(env) is not None and PROFILE_VARIABLES[0] in env
