"""The classical flow teacher: DIS optical flow from the true middle frame to each input."""

from __future__ import annotations

import cv2
import numpy as np

from vfi_cli.model.dis import dis_flow


def teacher_flow(first: np.ndarray, middle: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Classical flow supervision for the flow module: [5,H,W] float32 = f1→t, f2→t, confidence.

    DIS optical flow from the *ground-truth* middle frame to each input gives exactly the backward
    flows the network predicts (as IFRNet distils a flow network from the intermediate frame); the
    confidence is low where warping an input with its flow does not reproduce the middle frame
    (occlusions, flow failures).
    """
    height, width = middle.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((5, height, width), np.float32)
    errors = []
    for slot, source in ((0, first), (2, last)):
        flow = dis_flow(middle, source)
        out[slot : slot + 2] = flow.transpose(2, 0, 1)
        warped = cv2.remap(source, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        errors.append(np.abs(warped.astype(np.float32) - middle).mean(axis=2))
    out[4] = np.exp(-np.minimum(errors[0], errors[1]) / 8.0)
    return out
