"""PyTorch module -> ONNX -> OpenVINO IR (fp32, fp16 or NNCF int8), with our metadata.

The IR's input is the normalised NCHW float tensor the network was trained on; the engine
prepends u8 decoding, resize and normalisation with PrePostProcessor at load time, where
the camera size is known. Keeping that out of the file keeps one IR valid for any camera.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
import tempfile
from typing import Iterable, Iterator

import numpy as np
import torch

from depth_anything_ros import __version__
from depth_anything_ros.export.checkpoint import LoadedModel
from depth_anything_ros.inference.metadata import (IMAGENET_MEAN, IMAGENET_STD, METRIC_DEPTH,
                                                   ModelMetadata, RELATIVE_INVERSE_DEPTH,
                                                   RT_INFO_SECTION)
from depth_anything_ros.inference.preprocess import da3_reference_tensor, reference_tensor

INPUT_NAME = "image"
DEFAULT_OPSET = 17
# Max error relative to the output range that --verify accepts, per stored precision.
VERIFY_TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "int8": 0.1}


# Node names (from the ONNX export) of the depth head, for Int8Settings.ignored_patterns.
DPT_HEAD_PATTERN = r"/depth_head/.*"


@dataclass(frozen=True)
class Int8Settings:
    """NNCF knobs that ``python -m benchmarks.int8_sweep`` compares.

    The defaults are the ones it chose (benchmarks/README.md has the table).
    """

    smooth_quant_alpha: float | None = None   # None: NNCF's default; < 0 turns it off
    ignored_patterns: tuple[str, ...] = ()    # node-name regexes left in float
    preset: str = "mixed"                     # mixed | performance (symmetric activations)


@dataclass(frozen=True)
class ExportRequest:
    height: int
    width: int
    precision: str = "fp16"            # fp32 | fp16 | int8
    opset: int = DEFAULT_OPSET
    use_dynamo: bool = False
    calibration: tuple[Path, ...] = ()  # images or videos, required for int8
    calibration_size: int = 32
    int8: Int8Settings = Int8Settings()


def export_onnx(loaded: LoadedModel, request: ExportRequest, path: Path) -> Path:
    """Trace at the requested size.

    The legacy exporter is the default: it gives a plain graph that OpenVINO fuses well;
    ``use_dynamo`` is there for newer torch versions.
    """
    model = loaded.model
    sample = torch.zeros(1, 3, request.height, request.width)
    with torch.no_grad():
        model(sample)  # fills the size-specific position-embedding cache outside the trace
        torch.onnx.export(model, (sample,), str(path), input_names=[INPUT_NAME],
                          output_names=list(description_of(loaded).output_names),
                          opset_version=request.opset, dynamo=request.use_dynamo,
                          do_constant_folding=True)
    return path


def description_of(loaded: LoadedModel) -> ModelMetadata:
    """Return what the model is: its metadata less the export's fields (V2: from the module)."""
    if loaded.description is not None:
        return loaded.description
    model = loaded.model
    metric = model.max_depth is not None
    return ModelMetadata(
        encoder=model.config.name, depth_type="metric" if metric else "relative",
        max_depth=float(model.max_depth or 0.0), input_height=0, input_width=0,
        family="v2", outputs=(("depth", METRIC_DEPTH if metric else RELATIVE_INVERSE_DEPTH),))


def metadata_for(loaded: LoadedModel, request: ExportRequest) -> ModelMetadata:
    return dataclasses.replace(
        description_of(loaded), input_height=request.height, input_width=request.width,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, color_order="RGB", precision=request.precision,
        checkpoint_name=loaded.checkpoint_name, checkpoint_sha256=loaded.checkpoint_sha256,
        tool_version=f"depth_anything_ros {__version__}")


def convert_to_ir(onnx_path: Path, metadata: ModelMetadata, request: ExportRequest,
                  xml_path: Path) -> Path:
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    if request.precision == "int8":
        model = quantize_int8(model, request, metadata.family)
    for key, value in metadata.to_rt_info().items():
        model.set_rt_info(value, [RT_INFO_SECTION, key])
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    # int8 keeps its non-quantised weights in fp16 too: that is what halves the file.
    ov.save_model(model, str(xml_path), compress_to_fp16=request.precision != "fp32")
    return xml_path


def quantize_int8(model, request: ExportRequest, family: str = "v2"):
    """NNCF post-training quantization on real images, never on noise.

    The images are preprocessed as the model's family does at run time.
    """
    import nncf

    if not request.calibration:
        raise ValueError("int8 needs --calibration-images DIR (a folder of camera images or "
                         "a video); calibrating on noise gives a model that looks fine and "
                         "is wrong")
    tensors = list(calibration_tensors(request.calibration, request.height, request.width,
                                       request.calibration_size, family))
    if not tensors:
        raise ValueError(f"no readable images in {', '.join(map(str, request.calibration))}")
    settings = request.int8
    advanced = None
    if settings.smooth_quant_alpha is not None:
        from nncf.quantization.advanced_parameters import (AdvancedQuantizationParameters,
                                                           AdvancedSmoothQuantParameters)
        advanced = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(
            matmul=settings.smooth_quant_alpha))
    ignored = (nncf.IgnoredScope(patterns=list(settings.ignored_patterns), validate=False)
               if settings.ignored_patterns else None)
    return nncf.quantize(model, nncf.Dataset(tensors), model_type=nncf.ModelType.TRANSFORMER,
                         preset=nncf.QuantizationPreset(settings.preset),
                         subset_size=len(tensors), ignored_scope=ignored,
                         advanced_parameters=advanced)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def calibration_tensors(sources: Iterable[Path], height: int, width: int,
                        limit: int, family: str = "v2") -> Iterator[np.ndarray]:
    """Network inputs from image folders, image files or videos (evenly spaced frames)."""
    preprocess = da3_reference_tensor if family == "da3" else reference_tensor
    count = 0
    for frame in _frames(sources, limit):
        yield preprocess(frame, height, width)
        count += 1
        if count >= limit:
            return


def _frames(sources: Iterable[Path], limit: int) -> Iterator[np.ndarray]:
    import cv2

    for source in sources:
        files = sorted(p for p in source.iterdir()) if source.is_dir() else [source]
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is not None:
                    yield image
            elif path.is_file():
                yield from _video_frames(path, limit)


def _video_frames(path: Path, limit: int) -> Iterator[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        step = max(1, total // max(1, limit))
        for index in range(0, max(total, 1), step):
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


@dataclass(frozen=True)
class VerifyResult:
    max_error: float    # relative to the reference output range, worst output
    mean_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance


def verify_ir(loaded: LoadedModel, xml_path: Path, network_input: np.ndarray,
              precision: str) -> VerifyResult:
    """Run the same input through PyTorch and the IR, comparing every output.

    The IR runs with f32 execution, so only the stored precision is measured, not the CPU's
    bf16 mode.
    """
    import openvino as ov

    with torch.no_grad():
        references = loaded.model(torch.from_numpy(network_input))
    if isinstance(references, torch.Tensor):
        references = (references,)
    compiled = ov.Core().compile_model(str(xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = compiled(network_input)
    errors = []
    for index, reference in enumerate(r.numpy() for r in references):
        span = float(reference.max() - reference.min()) or 1.0
        errors.append(np.abs(outputs[index] - reference) / span)
    return VerifyResult(max(float(e.max()) for e in errors),
                        max(float(e.mean()) for e in errors), VERIFY_TOLERANCE[precision])


def export_model(loaded: LoadedModel, request: ExportRequest, output: Path,
                 keep_onnx: bool = False) -> Path:
    """Write ``output`` (.onnx, or .xml with its .bin). Returns the written path."""
    if output.suffix == ".onnx":
        output.parent.mkdir(parents=True, exist_ok=True)
        return export_onnx(loaded, request, output)
    if output.suffix != ".xml":
        raise ValueError(f"--output must end in .onnx or .xml, got {output.name}")
    metadata = metadata_for(loaded, request)
    if keep_onnx:
        output.parent.mkdir(parents=True, exist_ok=True)
        onnx_path = export_onnx(loaded, request, output.with_suffix(".onnx"))
        return convert_to_ir(onnx_path, metadata, request, output)
    with tempfile.TemporaryDirectory(prefix="depth_anything_export_") as tmp:
        onnx_path = export_onnx(loaded, request, Path(tmp) / "model.onnx")
        return convert_to_ir(onnx_path, metadata, request, output)
