"""Depth Anything 3 checkpoints: the Hugging Face folder or its .safetensors, loaded strictly.

The released files (depth-anything/DA3METRIC-LARGE, ...) are written by huggingface_hub's
PyTorchModelHubMixin around upstream's ``DepthAnything3`` wrapper: ``config.json`` holds
``{"model_name": ...}`` and every key of ``model.safetensors`` starts with ``model.``
(the wrapper holds the network as ``self.model``). safetensors stores a tensor shared by
several modules once and records each dropped name in the file's ``__metadata__`` as
``{dropped: stored}`` (DA3-Small/Base's one LayerNorm under four names); the loader puts
the stored tensor under every name. Upstream itself loads with ``strict=False``, which
would keep random weights for a missing key without a word, so the check here is strict
and runs on the file's header, before any tensor is read.
"""

from __future__ import annotations

import json
from pathlib import Path

from depth_anything_ros.export.checkpoint import (CheckpointError, fetch_from_hub, LoadedModel,
                                                  mismatches, sha256_of)
from depth_anything_ros.export.configs import ENCODERS
from depth_anything_ros.export.da3_models import DA3_MODELS, DA3Model
from depth_anything_ros.inference.metadata import (FOCAL_DEPTH, FOCAL_REFERENCE, ModelMetadata,
                                                   SKY, SKY_THRESHOLD)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
KEY_PREFIX = "model."


def locate(path: Path) -> tuple[Path, Path | None]:
    """(weights, config.json or None) for a folder or a ``.safetensors`` file."""
    if path.is_dir():
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise CheckpointError(f"{path} has no {WEIGHTS_FILE}; pass the Hugging Face folder "
                                  f"of the model (with {WEIGHTS_FILE} and {CONFIG_FILE}) or "
                                  "the .safetensors file")
    elif path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path} is not a .safetensors file; Depth Anything 3 "
                                  f"checkpoints are the Hugging Face folder or its {WEIGHTS_FILE}")
        weights = path
    else:
        raise CheckpointError(f"checkpoint {path} does not exist")
    config = weights.parent / CONFIG_FILE
    return weights, config if config.is_file() else None


def check_config(config: Path | None, model: DA3Model) -> None:
    """Refuse a folder whose config.json names another model.

    Mono-Large and Metric-Large have the same keys and shapes; only config.json tells
    them apart, and exporting one as the other gives depth in the wrong units.
    """
    if config is None:
        return
    try:
        name = json.loads(config.read_text()).get("model_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"cannot read {config} as the model's JSON config: {exc}") from None
    if name is not None and name != model.name:
        raise CheckpointError(f"{config} says model_name '{name}' but --model is '{model.name}'; "
                              f"pass --model {name} (or the checkpoint of {model.name})")


def read_layout(weights: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Each stored key's shape, and the file's metadata, from the header alone."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
            return shapes, dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise CheckpointError(f"cannot read {weights} as safetensors: {exc}") from None


def aliases_of(stored: dict[str, tuple[int, ...]], metadata: dict[str, str]) -> dict[str, str]:
    """Return {dropped name: stored name} from the metadata (other entries, e.g. format, not)."""
    return {name: target for name, target in metadata.items()
            if target in stored and name not in stored}


def describe(model: DA3Model) -> ModelMetadata:
    """Return the IR metadata of a DA3 model, less the fields the export fills in."""
    meanings = [meaning for _, meaning in model.outputs]
    return ModelMetadata(
        encoder=model.encoder, depth_type=model.depth_type, max_depth=0.0,
        input_height=0, input_width=0, family="da3", model_name=model.name,
        outputs=model.outputs,
        focal_reference=FOCAL_REFERENCE if FOCAL_DEPTH in meanings else 0.0,
        sky_threshold=SKY_THRESHOLD if SKY in meanings else 0.0)


def load_da3(model_name: str, path: Path, height: int, width: int,
             checkpoint_name: str | None = None) -> LoadedModel:
    """Build the network for ``height x width`` and load the checkpoint at ``path`` strictly."""
    from safetensors.torch import load_file

    model = DA3_MODELS[model_name]
    weights, config = locate(path)
    check_config(config, model)
    stored, metadata = read_layout(weights)
    aliases = aliases_of(stored, metadata)
    module = model.build(height, width)
    expected = {KEY_PREFIX + key: tuple(value.shape) for key, value in module.state_dict().items()}
    parts = mismatches(expected, {**stored, **{a: stored[t] for a, t in aliases.items()}})
    if parts:
        raise CheckpointError(f"{weights} does not match Depth Anything 3 {model.name}: "
                              + "; ".join(parts) + _hint(stored, model))
    tensors = load_file(str(weights))
    for alias, target in aliases.items():
        tensors[alias] = tensors[target]
    module.load_state_dict({key.removeprefix(KEY_PREFIX): value
                            for key, value in tensors.items()}, strict=True)
    module.eval()
    name = checkpoint_name or (f"{weights.parent.name}/{weights.name}" if config else weights.name)
    return LoadedModel(module, name, sha256_of(weights), describe(model))


def _hint(stored: dict[str, tuple[int, ...]], model: DA3Model) -> str:
    """Name the models whose width the file has, when it is not the requested one's."""
    cls = stored.get(KEY_PREFIX + "backbone.pretrained.cls_token")
    if cls is None or cls[-1] == ENCODERS[model.encoder].embed_dim:
        return ""
    fits = [m.name for m in DA3_MODELS.values() if ENCODERS[m.encoder].embed_dim == cls[-1]]
    return f"; the file looks like {' or '.join(fits)}" if fits else ""


def download_da3(model_name: str, repo: str | None = None,
                 local_hint: str = "pass it with --checkpoint DIR") -> tuple[Path, str]:
    """Fetch config.json and model.safetensors of ``repo`` (default: the model's own).

    Returns the folder in the Hugging Face cache and the checkpoint name to record.
    Offline it fails within seconds, saying what to fetch by hand and, in ``local_hint``,
    how the route that called it takes a local folder (the export command and the build
    take it differently).
    """
    repo = repo or DA3_MODELS[model_name].hf_repo
    manual = (f"Download {WEIGHTS_FILE} and {CONFIG_FILE} by hand from "
              f"https://huggingface.co/{repo} into a folder, then {local_hint}")
    config = fetch_from_hub(repo, CONFIG_FILE, manual)
    weights = fetch_from_hub(repo, WEIGHTS_FILE, manual)
    if weights.parent != config.parent:
        raise CheckpointError(f"{repo}'s {WEIGHTS_FILE} and {CONFIG_FILE} landed in different "
                              f"cache folders. {manual}")
    return weights.parent, f"{repo}/{WEIGHTS_FILE}"
