"""Which precision of one model the engine loads, per CPU and device."""

from pathlib import Path

from depth_anything_ros.inference.precision_choice import choose, cpu_flags, preference

AVX512_VNNI = frozenset({"avx512f", "avx512_vnni", "avx512_bf16"})
AMX = AVX512_VNNI | {"amx_bf16", "amx_int8", "amx_tile"}
FOLDER = Path("/models")
BOTH = [FOLDER / "vits_indoor_518x686_fp16.xml", FOLDER / "vits_indoor_518x686_int8.xml"]


def test_int8_without_amx_bf16_with_amx_fp16_on_other_devices():
    assert choose(BOTH, "CPU", AVX512_VNNI).path.name.endswith("_int8.xml")
    amx = choose(BOTH, "CPU", AMX)
    assert amx.path.name.endswith("_fp16.xml") and "AMX" in amx.reason
    assert choose(BOTH, "GPU.0", AVX512_VNNI).path.name.endswith("_fp16.xml")


def test_falls_back_to_what_the_folder_has():
    only_fp32 = [FOLDER / "m_fp32.xml", FOLDER / "m_fp16.xml"]
    assert choose(only_fp32, "CPU", AVX512_VNNI).path.name == "m_fp16.xml"
    assert preference("CPU", frozenset())[0] == ("int8", "fp16", "fp32")


def test_different_models_or_unknown_names_are_not_chosen_between():
    assert choose([FOLDER / "vits_indoor_fp16.xml", FOLDER / "vitb_indoor_fp16.xml"],
                  "CPU", AMX) is None
    assert choose([FOLDER / "a.xml", FOLDER / "a_fp16.xml"], "CPU", AMX) is None


def test_cpu_flags_reads_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx512f", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()
