"""Host <-> device copies that overlap the model on CUDA, and plain hand-overs on the CPU.

On CUDA, uploads go through pinned staging buffers (a few per array shape, allocated once and reused
once the copy that last used them has finished) on an upload stream, and the compute stream waits
for them; downloads wait for the compute stream, run on their own stream into pinned memory from
PyTorch's caching host allocator (reused once released, so memory is bounded by the frames in
flight) and are waited for only when their arrays are wanted, by the encoder thread. On the CPU the
same calls hand arrays over without copying, so the engine's code is one for both.

uint16 arrays (deep video's planes) travel as int16 with the same bits: torch has few uint16 kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

_SLOTS = 4  # staging buffers per shape: enough for the planes of frames a batch prepares back to back


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.view(np.int16) if array.dtype == np.uint16 else array)


def _as_array(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.numpy()
    return array.view(np.uint16) if array.dtype == np.int16 else array


class Download:
    """Arrays on their way to the host; :meth:`result` waits for them (on CUDA) and returns them."""

    def __init__(self, hosts: list[torch.Tensor], event: torch.cuda.Event | None) -> None:
        self._hosts = hosts
        self._event = event

    def result(self) -> list[np.ndarray]:
        if self._event is not None:
            self._event.synchronize()
        return [_as_array(host) for host in self._hosts]


class Transfer:
    """Uploads and downloads for one device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._cuda = device.type == "cuda"
        if self._cuda:
            self._upload_stream = torch.cuda.Stream(device)
            self._download_stream = torch.cuda.Stream(device)
            self._staging: dict[tuple, list[tuple[torch.Tensor, torch.cuda.Event]]] = {}
            self._turn: dict[tuple, int] = {}

    def upload(self, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """The arrays on the device, ready for the current (compute) stream."""
        tensors = [_as_tensor(array) for array in arrays]
        if not self._cuda:
            return tensors
        compute = torch.cuda.current_stream(self.device)
        uploaded = []
        with torch.cuda.stream(self._upload_stream):
            for tensor in tensors:
                staging, event = self._stage(tensor)
                uploaded.append(staging.to(self.device, non_blocking=True))
                event.record(self._upload_stream)
        compute.wait_stream(self._upload_stream)
        for tensor in uploaded:
            tensor.record_stream(compute)  # made on the upload stream, used and freed on the compute stream
        return uploaded

    def _stage(self, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event]:
        """The next pinned buffer of this shape, once its previous copy is done, holding ``tensor``."""
        key = (tuple(tensor.shape), tensor.dtype)
        slots = self._staging.setdefault(key, [])
        turn = self._turn.get(key, 0)
        self._turn[key] = (turn + 1) % _SLOTS
        if turn == len(slots):
            slots.append((torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True), torch.cuda.Event()))
        staging, event = slots[turn]
        event.synchronize()
        staging.copy_(tensor)
        return staging, event

    def download(self, tensors: Sequence[torch.Tensor]) -> Download:
        """Start copying ``tensors`` (made on the current stream) to the host."""
        if not self._cuda:
            return Download([tensor.contiguous() for tensor in tensors], None)
        self._download_stream.wait_stream(torch.cuda.current_stream(self.device))
        hosts = []
        with torch.cuda.stream(self._download_stream):
            for tensor in tensors:
                host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                host.copy_(tensor, non_blocking=True)
                tensor.record_stream(self._download_stream)
                hosts.append(host)
            event = torch.cuda.Event()
            event.record(self._download_stream)
        return Download(hosts, event)
