"""Reading transformers-format Depth Anything V2 folders (``--hf``) into official key names.

The mapping inverts transformers' conversion script: ``qkv`` was split into query/key/value
and refinenet1..4 became fusion layers 3..0. Mapping back lets one strict loader and one
network serve both formats.
"""

from __future__ import annotations

from pathlib import Path
import re

import torch

from depth_anything_ros.export.checkpoint import CheckpointError

_BLOCK = "pretrained.blocks.{}."
_RULES: list[tuple[str, str]] = [
    (r"backbone\.embeddings\.cls_token", "pretrained.cls_token"),
    (r"backbone\.embeddings\.mask_token", "pretrained.mask_token"),
    (r"backbone\.embeddings\.position_embeddings", "pretrained.pos_embed"),
    (r"backbone\.embeddings\.patch_embeddings\.projection\.(\w+)",
     "pretrained.patch_embed.proj.{0}"),
    (r"backbone\.encoder\.layer\.(\d+)\.norm(\d)\.(\w+)", "pretrained.blocks.{0}.norm{1}.{2}"),
    (r"backbone\.encoder\.layer\.(\d+)\.attention\.(?:output\.dense|o_proj)\.(\w+)",
     "pretrained.blocks.{0}.attn.proj.{1}"),
    (r"backbone\.encoder\.layer\.(\d+)\.layer_scale(\d)\.lambda1",
     "pretrained.blocks.{0}.ls{1}.gamma"),
    (r"backbone\.encoder\.layer\.(\d+)\.mlp\.(fc\d)\.(\w+)", "pretrained.blocks.{0}.mlp.{1}.{2}"),
    (r"backbone\.encoder\.layer\.(\d+)\.mlp\.weights_in\.(\w+)",
     "pretrained.blocks.{0}.mlp.w12.{1}"),
    (r"backbone\.encoder\.layer\.(\d+)\.mlp\.weights_out\.(\w+)",
     "pretrained.blocks.{0}.mlp.w3.{1}"),
    (r"backbone\.layernorm\.(\w+)", "pretrained.norm.{0}"),
    (r"neck\.reassemble_stage\.layers\.(\d)\.projection\.(\w+)", "depth_head.projects.{0}.{1}"),
    (r"neck\.reassemble_stage\.layers\.(\d)\.resize\.(\w+)", "depth_head.resize_layers.{0}.{1}"),
    (r"head\.conv1\.(\w+)", "depth_head.scratch.output_conv1.{0}"),
    (r"head\.conv2\.(\w+)", "depth_head.scratch.output_conv2.0.{0}"),
    (r"head\.conv3\.(\w+)", "depth_head.scratch.output_conv2.2.{0}"),
]
# transformers < 5 stores attention.attention.{query,key,value} and attention.output.dense;
# transformers 5 writes attention.{q,k,v}_proj and attention.o_proj. Both occur in the wild.
_QKV = re.compile(r"backbone\.encoder\.layer\.(\d+)\.attention\.(?:attention\.)?"
                  r"(query|key|value|q_proj|k_proj|v_proj)\.(\w+)")
_QKV_PART = {"q_proj": "query", "k_proj": "key", "v_proj": "value"}
_NECK_CONV = re.compile(r"neck\.convs\.(\d)\.weight")
_FUSION = re.compile(r"neck\.fusion_stage\.layers\.(\d)\."
                     r"(projection|residual_layer(\d)\.convolution(\d))\.(\w+)")


def to_official(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers state dict; unknown keys are kept so the strict check names them."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in hf_state.items():
        key = key.removeprefix("model.")
        if match := _QKV.fullmatch(key):
            layer, part, kind = match.groups()
            qkv.setdefault((layer, kind), {})[_QKV_PART.get(part, part)] = value
        elif match := _NECK_CONV.fullmatch(key):
            out[f"depth_head.scratch.layer{int(match[1]) + 1}_rn.weight"] = value
        elif match := _FUSION.fullmatch(key):
            refine = f"depth_head.scratch.refinenet{4 - int(match[1])}"
            if match[2] == "projection":
                out[f"{refine}.out_conv.{match[5]}"] = value
            else:
                out[f"{refine}.resConfUnit{match[3]}.conv{match[4]}.{match[5]}"] = value
        else:
            out[_rename(key)] = value
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise CheckpointError(f"layer {layer} lacks part of query/key/value {kind}")
        out[_BLOCK.format(layer) + f"attn.qkv.{kind}"] = torch.cat(
            [parts["query"], parts["key"], parts["value"]], dim=0)
    if "pretrained.mask_token" in out and out["pretrained.mask_token"].dim() == 3:
        out["pretrained.mask_token"] = out["pretrained.mask_token"][0]
    return out


def _rename(key: str) -> str:
    for pattern, template in _RULES:
        if match := re.fullmatch(pattern, key):
            return template.format(*match.groups())
    return key


def read_hf_folder(folder: Path) -> dict[str, torch.Tensor]:
    """Load ``model.safetensors`` (or ``pytorch_model.bin``) from a local transformers folder."""
    safetensors_file = folder / "model.safetensors"
    if safetensors_file.is_file():
        from safetensors.torch import load_file
        return to_official(load_file(str(safetensors_file)))
    bin_file = folder / "pytorch_model.bin"
    if bin_file.is_file():
        return to_official(torch.load(bin_file, map_location="cpu", weights_only=True))
    raise CheckpointError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
