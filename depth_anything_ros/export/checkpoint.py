"""Loading official checkpoints strictly, and finding them (local path or Hugging Face)."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import socket
from typing import Mapping
from urllib.parse import urlparse

import torch
from torch import nn

from depth_anything_ros.export.configs import ENCODERS
from depth_anything_ros.export.network import DepthAnythingV2
from depth_anything_ros.inference.metadata import ModelMetadata


class CheckpointError(RuntimeError):
    """The weights cannot be found, fetched or loaded; the message says what to do."""


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    checkpoint_name: str
    checkpoint_sha256: str
    # What the IR says about the model, less the export's own fields (size, precision,
    # checkpoint, tool version); None for V2, whose module describes itself.
    description: ModelMetadata | None = None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # some training scripts wrap the state dict
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a state dict (got {type(state).__name__})")
    return state


def load_strict(model: DepthAnythingV2, state: dict[str, torch.Tensor], source: str) -> None:
    """Load with no missing, unexpected or mis-shaped key; name the first offenders otherwise.

    Upstream checkpoints come as encoder-specific files; loading a vitb file into a vits
    model is the usual mistake, so the message suggests the encoder the keys point to.
    """
    parts = mismatches({k: tuple(v.shape) for k, v in model.state_dict().items()},
                       {k: tuple(v.shape) for k, v in state.items()})
    if parts:
        hint = _guess_encoder(state)
        suffix = f"; the checkpoint looks like encoder '{hint}'" if hint else ""
        raise CheckpointError(
            f"{source} does not match Depth Anything V2 {model.config.name}: "
            + "; ".join(parts) + suffix)
    model.load_state_dict(state, strict=True)


def mismatches(expected: Mapping[str, tuple[int, ...]],
               stored: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Missing, unexpected and mis-shaped keys, each as "N label (first: ...)"; [] if none."""
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k not in expected]
    misshaped = [f"{k} {stored[k]} != {shape}"
                 for k, shape in expected.items() if k in stored and stored[k] != shape]
    return [f"{len(keys)} {label} (first: {', '.join(keys[:3])})"
            for label, keys in (("missing", missing), ("unexpected", unexpected),
                                ("wrong shape", misshaped)) if keys]


def _guess_encoder(state: dict[str, torch.Tensor]) -> str | None:
    token = state.get("pretrained.cls_token")
    if token is None:
        return None
    for name, cfg in ENCODERS.items():
        if token.shape[-1] == cfg.embed_dim:
            return name
    return None


def build_model(encoder: str, checkpoint: Path, max_depth: float | None) -> LoadedModel:
    model = DepthAnythingV2(encoder, max_depth=max_depth)
    load_strict(model, read_state_dict(checkpoint), str(checkpoint))
    model.eval()
    return LoadedModel(model, checkpoint.name, sha256_of(checkpoint))


# How the export command takes a local file; the build route passes its own wording.
CLI_LOCAL_HINT = "pass it with --checkpoint /path/to/{filename}"


def download_checkpoint(encoder: str, metric: str | None, timeout_s: float = 10.0,
                        local_hint: str = CLI_LOCAL_HINT) -> Path:
    """Fetch the official checkpoint into the standard Hugging Face cache, with progress.

    Only called when the user gave no local file (--checkpoint or --hf for the export
    command, DEPTH_ANYTHING_CHECKPOINTS for the build). Offline, it must fail within
    seconds and tell the user which file to fetch by hand and how to hand it over:
    ``local_hint``, with ``{filename}`` filled in, because each route takes it differently.
    """
    cfg = ENCODERS[encoder]
    filename = cfg.checkpoint_file(metric)
    hint = local_hint.format(filename=filename)
    if not cfg.public_weights:
        raise CheckpointError(
            f"{encoder} (Giant) has no public weights; to use your own {filename}, {hint}")
    repo = cfg.checkpoint_repo(metric)
    return fetch_from_hub(
        repo, filename, f"Download {filename} by hand from https://huggingface.co/{repo}, "
        f"then {hint}", timeout_s)


def fetch_from_hub(repo: str, filename: str, manual: str, timeout_s: float = 10.0) -> Path:
    """One file of a Hugging Face repo, from the cache or downloaded into it.

    ``manual`` says how to fetch it by hand and hand it over; every failure ends with it.
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id=repo, filename=filename)
    if isinstance(cached, str):
        return Path(cached)
    if constants.HF_HUB_OFFLINE:  # the user said so: no connection attempt at all
        raise CheckpointError(
            f"{filename} is not in the Hugging Face cache and HF_HUB_OFFLINE is set. {manual}")
    _check_reachable(constants.ENDPOINT, timeout_s, manual)
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout_s)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout_s)))
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename))
    except Exception as exc:  # hub errors come in many classes; all mean "not here"
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"could not download {filename} ({exc.__class__.__name__}: "
                              f"{first_line}). {manual}") from exc


def _check_reachable(endpoint: str, timeout_s: float, manual: str) -> None:
    """One TCP connect before handing over to huggingface_hub.

    Its retries with back-off take ~25 s to give up on a machine without internet.
    """
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout_s).close()
    except OSError as exc:
        raise CheckpointError(
            f"cannot reach {url.hostname} to download the checkpoint ({exc}). {manual}") from exc


def load_hf(encoder: str, path_or_repo: str, max_depth: float | None) -> LoadedModel:
    """``--hf``: a local transformers folder, or a repo id fetched into the HF cache."""
    from depth_anything_ros.export.hf_format import read_hf_folder

    folder = Path(path_or_repo)
    if not folder.is_dir():
        from huggingface_hub import constants, snapshot_download

        _check_reachable(constants.ENDPOINT, 10.0,
                         f"Download the {path_or_repo} folder by hand and pass its path to --hf")
        folder = Path(snapshot_download(path_or_repo, allow_patterns=["*.json", "*.safetensors"]))
    model = DepthAnythingV2(encoder, max_depth=max_depth)
    load_strict(model, read_hf_folder(folder), str(folder))
    model.eval()
    weights = next(p for p in (folder / "model.safetensors", folder / "pytorch_model.bin")
                   if p.is_file())
    return LoadedModel(model, f"{folder.name}/{weights.name}", sha256_of(weights))
