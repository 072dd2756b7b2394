"""App. C interaction metrics and pose errors against closed forms and brute force."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax import interaction_metrics as im


def unit_box(lo=(0.0, 0.0, 0.0), size=(1.0, 2.0, 3.0), R=None):
    R = np.eye(3) if R is None else R
    v0 = np.asarray(lo, float)
    return np.stack([v0, v0 + R[:, 0] * size[0], v0 + R[:, 1] * size[1], v0 + R[:, 2] * size[2]])


def test_box_distance_matches_brute_force_on_a_rotated_box():
    R = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    box = unit_box((0.3, -0.2, 0.1), (0.5, 0.4, 0.2), R)
    pts = np.random.default_rng(0).uniform(-0.5, 1.0, (400, 3))
    # Brute force: the box's surface sampled on a fine grid of its six faces; inside from the local coordinates.
    g = np.linspace(0, 1, 61)
    a, b = np.meshgrid(g, g, indexing="ij")
    faces = []
    for k in range(3):
        i, j = [m for m in range(3) if m != k]
        for side in (0.0, 1.0):
            local = np.zeros(a.shape + (3,))
            local[..., k], local[..., i], local[..., j] = side, a, b
            faces.append(local.reshape(-1, 3))
    local = np.concatenate(faces) * [0.5, 0.4, 0.2]
    surface = box[0] + local @ R.T
    unsigned = np.min(np.linalg.norm(pts[:, None] - surface[None], axis=-1), axis=1)
    q = (pts - box[0]) @ R / [0.5, 0.4, 0.2]
    inside = np.all((q > 0) & (q < 1), axis=1)
    d = im.box_distance(pts, box[None])
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(d < 0, inside)
    np.testing.assert_allclose(np.abs(d), unsigned, atol=0.005)  # grid spacing 0.5 / 60 m -> <= 4 mm


def test_penetration_percent_counts_vertices_inside_any_box():
    boxes = np.stack([unit_box((0, 0, 0), (1, 1, 1)), unit_box((5, 0, 0), (1, 1, 1))])[None]  # [1, 2, 4, 3]
    verts = np.array([[[0.5, 0.5, 0.5], [5.5, 0.5, 0.5], [2.0, 0.0, 0.0], [0.5, 0.5, 1.5]]])
    assert im.penetration_percent(verts, boxes) == pytest.approx(50.0)
    # A vertex on the surface (within the 1 mm margin) does not count.
    assert im.penetration_percent(np.array([[[0.5, 0.5, 0.9995]]]), boxes) == 0.0


def test_contact_percent_uses_only_contact_frames_and_the_threshold():
    boxes = np.broadcast_to(unit_box((0, 0, 0), (1, 1, 1)), (4, 1, 4, 3))
    hand = np.zeros((4, 2, 3))
    hand[:, :, 0] = [[1.01, 3.0], [1.5, 2.0], [1.019, 1.5], [5.0, 6.0]]  # nearest: 1 cm, 50 cm, 1.9 cm, 4 m
    r = im.contact_percent(hand, boxes, np.array([True, True, True, False]))
    assert r["percent"] == pytest.approx(200 / 3)
    assert r["mean_distance_m"] == pytest.approx((0.01 + 0.5 + 0.019) / 3, abs=1e-9)
    assert np.isnan(im.contact_percent(hand, boxes, np.zeros(4, bool))["percent"])


def test_foot_sliding_is_zero_when_planted_and_scales_with_the_slide():
    T = 10
    foot = np.zeros((T, 4, 3))
    foot[..., 1] = -0.05  # 5 cm above a floor at y = 0, up = -y (OpenCV camera): a standing ankle's height
    up = np.array([0.0, -1.0, 0.0])
    stand = np.full(4, 0.05)
    r = im.foot_sliding(foot, up, 0.0, stand)
    assert r["score"] == 0.0 and r["contact_steps"] == 4 * (T - 1) and r["floor_gap_cm"] == pytest.approx(0.0)
    slid = foot.copy()
    slid[:, :2, 0] = 0.004 * np.arange(T)[:, None]  # two joints slide 4 mm per frame along the floor
    slid[:, 2:, 1] += 0.0005 * np.arange(T)[:, None]  # vertical motion is not sliding
    r = im.foot_sliding(slid, up, 0.0, stand)
    assert r["sliding_ratio"] == pytest.approx(0.5)
    assert r["mean_sliding_cm"] == pytest.approx(0.4)
    assert r["score"] == pytest.approx(0.2)


def test_a_foot_that_rises_while_sliding_is_in_contact_until_it_leaves_the_floor():
    """Contact is measured against the floor, not the joint's own lowest height over the clip."""
    T = 10
    foot = np.zeros((T, 4, 3))
    foot[..., 1] = -0.05 - 0.006 * np.arange(T)[:, None]  # rises 6 mm per frame: 5.4 cm in all
    foot[..., 0] = 0.007 * np.arange(T)[:, None]  # and slides 7 mm per frame
    r = im.foot_sliding(foot, np.array([0.0, -1.0, 0.0]), 0.0, np.full(4, 0.05))
    assert r["contact_steps"] == 4 * 3  # frames 0..3 are within 2 cm of the standing height: 3 steps per joint
    assert r["sliding_ratio"] == 1.0 and r["mean_sliding_cm"] == pytest.approx(0.7)
    assert r["floor_gap_cm"] == pytest.approx(100 * 0.006 * 4.5)
    floating = foot - [0.0, 0.3, 0.0]  # 30 cm above the floor: no contact, so no sliding, but a 32 cm gap
    r = im.foot_sliding(floating, np.array([0.0, -1.0, 0.0]), 0.0, np.full(4, 0.05))
    assert r["contact_steps"] == 0 and r["score"] == 0.0 and r["floor_gap_cm"] > 30


def test_smoothness_is_zero_at_constant_velocity_and_uses_30_fps():
    t = np.arange(12)[:, None, None]
    assert im.smoothness(0.01 * t * np.ones((12, 22, 3)), 30.0) == pytest.approx(0.0, abs=1e-12)
    jerky = np.zeros((12, 1, 3))
    jerky[1::2, 0, 0] = 0.01  # alternate 1 cm: speeds all 0.3 m/s at 30 fps -> std 0
    assert im.smoothness(jerky, 30.0) == pytest.approx(0.0, abs=1e-12)
    ramp = np.zeros((3, 1, 3))
    ramp[:, 0, 0] = [0.0, 0.01, 0.03]  # speeds 0.3 and 0.6 m/s -> std 0.15
    assert im.smoothness(ramp, 30.0) == pytest.approx(0.15)
    assert im.smoothness(ramp[::1], 15.0) == pytest.approx(0.075)  # half the frame rate: half the speeds


def test_mpjpe_and_pa_mpjpe():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(3, 22, 3))
    assert im.mpjpe(gt + [0.01, 0, 0], gt) == pytest.approx(10.0)
    R = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    moved = 1.3 * gt @ R.T + [1.0, 2.0, 3.0]  # a similarity transform: PA-MPJPE removes it
    assert im.pa_mpjpe(moved, gt) == pytest.approx(0.0, abs=1e-6)
    assert im.mpjpe(moved, gt) > 100
    noisy = gt + rng.normal(scale=0.01, size=gt.shape)
    assert 0 < im.pa_mpjpe(noisy, gt) <= im.mpjpe(noisy, gt)
