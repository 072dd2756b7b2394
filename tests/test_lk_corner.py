"""Edge-like track windows (the aperture problem): `corner_ratio` and the closed-form Stage I init that leaves
such tracks out (`stage1.init_min_corner_ratio`)."""

import dataclasses

import numpy as np
import pytest

from arthoi_jax import stage1
from arthoi_jax.config import SegmentationConfig, Stage1Config
from arthoi_jax.preprocess.lk_tracker import corner_ratio
from arthoi_jax.segmentation import segment
from tests.stage1_scene import make_scene


def _images(size=64):
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    stripes = 128 + 100 * np.sin(2 * np.pi * y / 6.0)  # horizontal stripes: gradients all along y
    checker = 128 + 100 * np.sign(np.sin(2 * np.pi * x / 16.0) * np.sin(2 * np.pi * y / 16.0))
    flat = np.full((size, size), 90.0)
    return stripes.astype(np.uint8), np.clip(checker, 0, 255).astype(np.uint8), flat.astype(np.uint8)


def test_corner_ratio_is_zero_on_stripes_and_flat_windows_and_high_at_corners():
    stripes, checker, flat = _images()
    pts = np.array([[20.5, 20.5], [32.5, 32.5], [40.5, 24.5]])  # checker: (32, 32) is a corner of four squares
    assert corner_ratio(stripes, pts).max() < 1e-3
    assert corner_ratio(flat, pts).max() == 0.0
    assert corner_ratio(checker, [[32.5, 32.5]])[0] > 0.8
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64)).astype(np.uint8)
    assert corner_ratio(noise, pts).min() > 0.3  # gradients every way
    # Rotating the image leaves the ratio: it measures the spread of gradient directions, not their angle.
    np.testing.assert_allclose(corner_ratio(stripes.T, pts[:, ::-1]), corner_ratio(stripes, pts), atol=1e-6)


@pytest.fixture(scope="module")
def drawer():
    b = make_scene("drawer", 96, 72, 5, max_value=0.35, yaw_deg=45.0)
    seg = segment(b.frames, b.object_masks, b.depth, b.K, b.tracks, b.visibility, SegmentationConfig(gaussian_stride=3))
    return b, seg


def test_init_leaves_out_edge_like_tracks(drawer, monkeypatch):
    """Half of the part's tracks are called edge-like and given a 3 px error along x (sliding along a stripe):
    with the filter the closed-form init recovers the GT motion from the other half, without it it does not."""
    b, seg = drawer
    part = np.flatnonzero(seg.track_labels == 1)
    assert len(part) >= 24
    edge = np.zeros(len(seg.track_labels), bool)
    edge[part[::2]] = True
    tracks = b.tracks.copy()
    tracks[1:, edge, 0] += 3.0 * np.linspace(0.25, 1.0, len(tracks) - 1)[:, None]
    monkeypatch.setattr(stage1, "corner_ratio", lambda grey, pts: np.where(edge, 0.01, 0.5))
    cfg = Stage1Config(articulation="prismatic", init_photometric=False)  # the corner filter alone (the image
    gt = b.gt.part_poses[:, 0, :3, 3]  # alignment would correct the slides too: tests/test_articulation_photometric.py)
    errs = {}
    for ratio in (0.0, 0.1):
        init, _, _ = stage1.initial_poses(seg, tracks, b.visibility, b.K,
                                               dataclasses.replace(cfg, init_min_corner_ratio=ratio), frames=b.frames)
        errs[ratio] = np.abs(init[:, 0, :3, 3] - gt).max()
    assert errs[0.1] < 1e-4, errs  # metres; the part moves 0.35 m (exact tracks left: exact init)
    assert errs[0.0] > 0.01, errs  # the 3 px slides cost ~3.6 cm
    # Fewer than MIN_INIT_TRACKS corner-like tracks: every track is used (as without the filter).
    monkeypatch.setattr(stage1, "corner_ratio", lambda grey, pts: np.zeros(len(pts)))
    init_all, _, _ = stage1.initial_poses(seg, tracks, b.visibility, b.K,
                                          dataclasses.replace(cfg, init_min_corner_ratio=0.1), frames=b.frames)
    init_off, _, _ = stage1.initial_poses(seg, tracks, b.visibility, b.K, cfg, frames=b.frames)
    np.testing.assert_allclose(init_all, init_off)
