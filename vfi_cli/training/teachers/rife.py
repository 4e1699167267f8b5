"""RIFE HDv3 (:class:`~vfi_cli.model.ifnet.IFNet`, three blocks) as a frozen flow teacher.

The architecture (:mod:`vfi_cli.model.ifnet`, shared with the ``ifnet`` flow module) evaluates each
block on the pair in both orders and averages, which makes the network symmetric in its two
inputs. Its outputs are the paper's quantities: the backward flows
from time 0.5 into each input and the blending mask of the first warped input. RIFE HDv3 has no
time input, so it teaches t = 0.5 only.

Weights load from a plain state dict (``flownet.pkl``, read with ``weights_only=True``) or a
``.safetensors`` file; nothing else is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vfi_cli.errors import VfiError, first_line
from vfi_cli.model.ifnet import IFNet
from vfi_cli.model.padding import Padder
from vfi_cli.model.warp import backward_warp

RIFE_MULTIPLE = 32  # frames are padded to this, as RIFE's own inference does at scale 1


def load_ifnet_state(path: Path) -> dict[str, torch.Tensor]:
    """RIFE's state dict from ``path``: safetensors, or a pickled *plain* state dict (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise VfiError(f"RIFE teacher weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means "not a plain state dict"
            raise VfiError(f"{path} is not a plain state dict of tensors ({type(error).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VfiError(f"{path} is not a state dict of tensors")
    # RIFE saves its DataParallel wrapper's names ("module.") and a training-only teacher block.
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith("block_tea.")}


def load_ifnet(path: Path) -> IFNet:
    """A frozen IFNet on the CPU, in eval mode."""
    network = IFNet()
    try:
        network.load_state_dict(load_ifnet_state(path))
    except RuntimeError as error:
        raise VfiError(f"{path} does not hold RIFE HDv3 weights: {first_line(error)}") from None
    network.eval().requires_grad_(False)
    return network


@torch.no_grad()
def ifnet_interpolate(network: IFNet, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:class:`IFNet` on frames of any size: padded to 32 with the project's padder, then cropped back."""
    padder = Padder(image0.shape[-2], image0.shape[-1], RIFE_MULTIPLE)
    flow0, flow1, mask = (padder.unpad(x) for x in network(padder.pad(image0), padder.pad(image1)))
    return flow0, flow1, mask, mask * backward_warp(image0, flow0) + (1 - mask) * backward_warp(image1, flow1)
