"""What a person checks after preprocessing: masks tinted over the frames, visible tracks as dots."""

from __future__ import annotations

import cv2
import numpy as np

from arthoi_jax.io.bundle import SceneBundle

OBJECT_TINT = np.array([255, 160, 0], np.float32)
HUMAN_TINT = np.array([0, 140, 255], np.float32)


def overlay(b: SceneBundle) -> np.ndarray:
    """[T, H, W, 3] uint8: frames with object (orange) and human (blue) masks at 40% and visible tracks in green."""
    out = b.frames.astype(np.float32)
    for masks, tint in ((b.object_masks, OBJECT_TINT), (b.human_masks, HUMAN_TINT)):
        out = np.where(masks[..., None], 0.6 * out + 0.4 * tint, out)
    out = out.round().astype(np.uint8)
    for t in range(b.num_frames):
        # cv2 draws at integer pixel centres: our (x, y) -> (x - 0.5, y - 0.5), in 1/16 px fixed point.
        for x, y in b.tracks[t, b.visibility[t]]:
            centre = (int(round((x - 0.5) * 16)), int(round((y - 0.5) * 16)))
            cv2.circle(out[t], centre, 16, (0, 255, 0), -1, lineType=cv2.LINE_AA, shift=4)
    return out
