"""Numbered image folders as input (at a rate the user gives) and PNG folders as output.

Images are sRGB: 8-bit images give 8-bit RGB, 16-bit PNG/TIFF give 16-bit RGB. Output PNGs are
16-bit when the input has more than 8 bits per sample (10-bit video), else 8-bit.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vfi_cli.errors import VideoError
from vfi_cli.files import commit_output, hold, identity, release, remove_stale_partials
from vfi_cli.video.color import ColorInfo, bit_depth, has_alpha
from vfi_cli.video.reader import DecodedFrame, Part, VideoInfo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
log = logging.getLogger(__name__)
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in a name


def is_folder_output(destination: Path) -> bool:
    """OUT is a PNG folder when it is an existing folder or a name without an extension."""
    return destination.is_dir() or not destination.suffix


def numbered_images(folder: Path) -> list[Path]:
    """The folder's images in frame order: by the last number in each name (frame_2 before frame_10)."""
    found = []
    for path in folder.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        if not path.is_file():  # a folder, a FIFO or a device named like an image: reading it fails or blocks
            raise VideoError(f"{path.name} in {folder} is not a regular file")
        match = _NUMBER.search(path.stem)
        if match is None:
            raise VideoError(f"{path.name} in {folder} has no frame number in its name")
        found.append((int(match.group(1)), path.name, path))
    found.sort()
    for (number, name, _), (next_number, next_name, _) in zip(found, found[1:]):
        if number == next_number:
            raise VideoError(f"{name} and {next_name} in {folder} have the same frame number {number}")
    return [path for _, _, path in found]


def _load(path: Path, warn_alpha: bool = False) -> np.ndarray:
    """An image as ``[H,W,3]`` RGB, uint8 or uint16 (grey is spread to three channels, alpha dropped)."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)  # cv2.imread cannot report why it failed
    except OSError as exc:
        raise VideoError(f"cannot read {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None or image.dtype not in (np.uint8, np.uint16):
        raise VideoError(f"cannot read {path} as an 8- or 16-bit image")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.shape[2] == 4 and warn_alpha and (image[..., 3] != np.iinfo(image.dtype).max).any():
        log.warning("the transparency of %s is dropped: vfi interpolates colour only, so every output frame is opaque",
                    path.name)
    return np.ascontiguousarray(image[..., 2::-1])  # BGR(A) -> RGB


def probe_images(folder: Path, rate: Fraction) -> VideoInfo:
    """Facts of an image folder shown at ``rate`` frames per second, from its first image."""
    images = numbered_images(folder)
    if not images:
        raise VideoError(f"no numbered images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    first = _load(images[0], warn_alpha=True)
    height, width = first.shape[:2]
    rate = Fraction(rate)
    return VideoInfo(
        path=folder,
        width=width,
        height=height,
        rate=rate,
        frame_count=len(images),
        duration=len(images) / rate,
        start_time=Fraction(0),
        pix_fmt="rgb48le" if first.dtype == np.uint16 else "rgb24",
        codec="images",
        color=ColorInfo.srgb(height),
        audio_streams=0,
        time_base=1 / rate,
    )


def read_images(info: VideoInfo, part: Part | None = None) -> Iterator[DecodedFrame]:
    """The folder's images as frames at exact times k / rate (with a ``part``: from its start, timed
    from there, up to and including the first frame at or after its end, as :class:`FrameReader` does)."""
    expected = (info.height, info.width, 3)
    dtype = np.uint16 if info.pix_fmt == "rgb48le" else np.uint8
    first = 0 if part is None else math.ceil(part.start * info.rate)
    last = None if part is None or part.end is None else math.ceil(part.end * info.rate)
    for index, path in enumerate(numbered_images(info.path)[first : None if last is None else last + 1]):
        rgb = _load(path)
        if rgb.shape != expected or rgb.dtype != dtype:
            raise VideoError(
                f"{path.name} is {rgb.shape[1]}x{rgb.shape[0]} {rgb.dtype.itemsize * 8}-bit but the first image is "
                f"{info.width}x{info.height} {np.dtype(dtype).itemsize * 8}-bit; all images must match"
            )
        picture = av.VideoFrame.from_ndarray(rgb, format=info.pix_fmt)
        yield DecodedFrame(index=index, time=index / info.rate, picture=picture, rgb=rgb)


def check_folder_output(destination: Path, overwrite: bool) -> None:
    """An existing OUT folder must be empty, or hold only PNGs and come with --overwrite."""
    if not destination.exists():
        return
    if not destination.is_dir():
        raise VideoError(f"output exists and is not a folder: {destination}")
    entries = list(destination.iterdir())
    if not entries:
        return
    if any(entry.suffix.lower() != ".png" or not entry.is_file() for entry in entries):
        raise VideoError(f"output folder {destination} holds files other than PNGs; choose an empty or new folder")
    if not overwrite:
        raise VideoError(f"output folder {destination} is not empty (pass --overwrite to replace its PNGs)")


class PngFolderWriter:
    """Writes frames as ``00000000.png``, ``00000001.png`` ... into a hidden folder beside OUT that
    is renamed into place only when complete (the same promise as
    :class:`~vfi_cli.video.writer.VideoWriter`: OUT is complete or absent).

    Takes RGB arrays: uint8 for 8-bit input, uint16 (16-bit PNG) for deeper input.
    """

    takes_rgb = True

    def __init__(self, destination: Path, source: VideoInfo, overwrite: bool = False) -> None:
        self.destination = Path(destination)
        self.temporary = self.destination.with_name(f".{self.destination.name}.vfi-partial-{os.getpid()}")
        self.pix_fmt = "rgb48le" if bit_depth(source.pix_fmt) > 8 else "rgb24"
        self.frames_written = 0
        self._committed = False
        self._held: int | None = None
        # An empty folder there may be filled; one holding PNGs replaced only with --overwrite (check_folder_output).
        self._replaces = identity(self.destination)
        if self._replaces is not None:
            check_folder_output(self.destination, overwrite)
        if has_alpha(source.pix_fmt):
            log.warning("the input's transparency (%s) is dropped: synthesised frames have none, so every PNG is opaque",
                        source.pix_fmt)

    def __enter__(self) -> PngFolderWriter:
        for prefix in (f".{self.destination.name}.vfi-partial-", f".{self.destination.name}.vfi-old-"):
            for name in remove_stale_partials(self.destination.parent, prefix, ""):
                log.warning("removed %s, left by an earlier run for %s that was killed", name, self.destination.name)
        try:
            self.temporary.mkdir()
        except OSError as exc:
            raise VideoError(f"cannot create {self.destination}: {exc.strerror}") from exc
        self._held = hold(self.temporary)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            shutil.rmtree(self.temporary, ignore_errors=True)
        release(self._held)

    def write(self, rgb: np.ndarray, time: Fraction | None = None) -> None:
        """Write the next frame (``time`` is not stored: a PNG folder has no timing)."""
        import cv2

        expected = np.uint16 if self.pix_fmt == "rgb48le" else np.uint8
        if rgb.dtype != expected:
            raise ValueError(f"expected {np.dtype(expected).name} frames for {self.pix_fmt}, got {rgb.dtype}")
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        if not ok:
            raise VideoError(f"cannot encode frame {self.frames_written} as PNG")
        path = self.temporary / f"{self.frames_written:08d}.png"
        try:
            path.write_bytes(encoded.tobytes())
        except OSError as exc:
            raise VideoError(f"writing {self.destination} failed: {exc.strerror}") from exc
        self.frames_written += 1

    def commit(self) -> None:
        """Move the finished folder into place (replacing an empty or PNG-only OUT that was there when
        the run started; see :func:`check_folder_output`), never over one that appeared meanwhile."""
        commit_output(self.temporary, self.destination, self._replaces)
        self._committed = True
