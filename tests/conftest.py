"""Shared fixtures: small generated videos and a tiny weights file, so no test needs external data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vfi_cli.config import ModelConfig
from vfi_cli.model.network import Interpolator
from vfi_cli.model.weights import save_weights

TINY_CONFIG = ModelConfig(unet_channels=(8, 16, 16), feature_channels=8, synthesis_channels=8)


def smooth_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A band-limited random RGB texture (uint8): bilinear warping of it is accurate."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((height, width, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigmaX=3.0)
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (30 + 190 * blurred).round().astype(np.uint8)


def translating_frames(count: int, height: int, width: int, step: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Frame k shows the texture moved by k*step pixels (content moves +x right, +y down)."""
    dx, dy = step
    margin = max(abs(dx), abs(dy)) * count + 2
    texture = smooth_texture(height + 2 * margin, width + 2 * margin, seed)
    return [texture[margin - k * dy : margin - k * dy + height, margin - k * dx : margin - k * dx + width] for k in range(count)]


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    rate: Fraction | int,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio_seconds: float | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames (and optionally a 440 Hz stereo AAC tone) with PyAV."""
    rate = Fraction(rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.options = options if options is not None else ({"crf": "0", "preset": "ultrafast"} if codec == "libx264" else {})
        audio = container.add_stream("aac", rate=48000, layout="stereo") if audio_seconds else None
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None:
            samples = int(48000 * audio_seconds)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.stack([tone[start : start + 1024]] * 2)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = 48000
                frame.pts = start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


class BlendInterpolator:
    """Stands in for FrameInterpolator where the network does not matter: the linear blend of the
    pair, so a synthesised frame is easy to recognise and a long clip converts in seconds."""

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        return rgb.astype(np.float32)

    def synthesize(self, pairs: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> list[np.ndarray]:
        return [((1 - t) * a + t * b).round().astype(np.uint8) for a, b, t in pairs]


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a translating-texture clip of ``count`` frames at ``rate``, with audio unless told not to."""

    def make(name: str = "in.mp4", count: int = 12, rate: Fraction | int = 24, size: tuple[int, int] = (32, 48),
             audio: bool = True, **kwargs) -> Path:
        frames = translating_frames(count, size[0], size[1], step=(2, 0))
        seconds = float(Fraction(count) / Fraction(rate)) if audio else None
        return write_video(tmp_path / name, frames, rate, audio_seconds=seconds, **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny model saved the way real weights are (the CLI cannot tell)."""
    torch.manual_seed(0)
    model = Interpolator.from_config(TINY_CONFIG)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(model, TINY_CONFIG, path, recipe={"trained": False})
    return path


def decode_video(path: Path) -> tuple[list[Fraction], list[np.ndarray]]:
    """Presentation times (exact) and RGB frames of a file's first video stream."""
    times, frames = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(Fraction(frame.pts) * frame.time_base)
            frames.append(frame.to_ndarray(format="rgb24"))
    return times, frames


@pytest.fixture(autouse=True)
def _private_backend_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exported graphs (onnxruntime / openvino backends) go to a test folder, not the user's cache."""
    monkeypatch.setenv("VFI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "vfi-cache"))
