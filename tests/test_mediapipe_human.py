"""The real MediaPipe models (weights inside the mediapipe 0.10.14 wheel) on frames of the shared real clips."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from arthoi_jax.io.bundle import FOOT_CONTACT_JOINTS, validate_bundle
from arthoi_jax.io.video import read_video
from arthoi_jax.preprocess.foot_contact import (
    body_height_px,
    foot_contact_from_landmarks,
)
from arthoi_jax.preprocess.mediapipe_human import (
    BODY_LANDMARKS,
    LEFT_WRIST,
    RIGHT_WRIST,
    bundle_fields,
    perceive_human,
)
from tests.factories import tiny_bundle

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
needs_clips = pytest.mark.skipif(not (REAL / "truck_kling.mp4").is_file(),
                                 reason=f"the shared real clips are not at {REAL}")
TORSO = [BODY_LANDMARKS.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]


def clip(name, width=384, frame_step=10):
    return read_video(REAL / f"{name}_kling.mp4", width=width, frame_step=frame_step)


@pytest.fixture(scope="module")
def truck():
    v = clip("truck")
    return v, perceive_human(v.frames)


@pytest.fixture(scope="module")
def bicycle():
    v = clip("bicycle")
    return v, perceive_human(v.frames)


@needs_clips
@pytest.mark.parametrize("which", ["truck", "bicycle"])
def test_person_found_with_landmarks_in_pixels(which, request):
    v, p = request.getfixturevalue(which)
    T, H, W, _ = v.frames.shape
    assert T == 6
    assert p.body_found.all()
    assert p.body_landmarks.shape == (T, 33, 2) and p.body_landmarks.dtype == np.float32
    assert p.body_conf.shape == (T, 33) and 0 <= p.body_conf.min() and p.body_conf.max() <= 1
    assert p.hand_keypoints.shape == (T, 2, 21, 2) and p.hand_conf.shape == (T, 2, 21)
    sure = p.body_conf > 0.8
    assert sure[:, TORSO].all()
    xy = p.body_landmarks[sure]
    assert (xy >= -1).all() and (xy[:, 0] <= W + 1).all() and (xy[:, 1] <= H + 1).all()
    # a standing or sitting adult: the confident landmarks span a good part of the frame height
    assert 0.2 * H < body_height_px(p.body_landmarks, p.body_conf, p.body_found) < H


@needs_clips
@pytest.mark.parametrize("which", ["truck", "bicycle"])
def test_person_mask_covers_the_torso_landmarks(which, request):
    v, p = request.getfixturevalue(which)
    T, H, W, _ = v.frames.shape
    area = p.person_mask.mean(axis=(1, 2))
    assert (area > 0.01).all() and (area < 0.6).all(), area
    ij = np.floor(p.body_landmarks[:, TORSO][..., ::-1]).astype(int).clip(0, [H - 1, W - 1])
    inside = p.person_mask[np.arange(T)[:, None], ij[..., 0], ij[..., 1]]
    assert inside.mean() >= 0.9, inside


@needs_clips
def test_hands_assigned_to_the_nearer_body_wrist(bicycle):
    _, p = bicycle
    found = p.hand_found
    assert found.sum() >= 4, found  # README: a hand in 12 of 13 sampled bicycle frames
    assert p.hand_conf[found].min() > 0.5
    for t, side in zip(*np.nonzero(found)):
        wrist = p.hand_keypoints[t, side, 0]
        own = p.body_landmarks[t, [LEFT_WRIST, RIGHT_WRIST][side]]
        other = p.body_landmarks[t, [RIGHT_WRIST, LEFT_WRIST][side]]
        assert np.linalg.norm(wrist - own) <= np.linalg.norm(wrist - other)
    assert (p.hand_keypoints[~found] == 0).all() and (p.hand_conf[~found] == 0).all()


@needs_clips
def test_results_fill_a_valid_bundle(bicycle):
    v, p = bicycle
    T, H, W, _ = v.frames.shape
    base = tiny_bundle(T=T, H=H, W=W, optional=False)
    contact = foot_contact_from_landmarks(p.body_landmarks, p.body_conf, p.body_found, v.fps)
    b = dataclasses.replace(base, frames=v.frames, foot_contact=contact, **bundle_fields(p))
    validate_bundle(b)
    assert b.human_masks.any() and b.hand_keypoint_conf.max() > 0


@needs_clips
def test_landmarks_scale_with_the_image_size():
    """x * W, y * H are pixel coordinates: the same frame at 256 and 512 px gives landmarks a factor 2 apart."""
    small = read_video(REAL / "truck_kling.mp4", width=256, max_frames=2)
    large = read_video(REAL / "truck_kling.mp4", width=512, max_frames=2)
    a = perceive_human(small.frames[:1], video_mode=False, detect_hands=False)
    b = perceive_human(large.frames[:1], video_mode=False, detect_hands=False)
    sure = (a.body_conf[0] > 0.9) & (b.body_conf[0] > 0.9)
    assert sure.sum() >= 10
    err = np.linalg.norm(2 * a.body_landmarks[0, sure] - b.body_landmarks[0, sure], axis=-1)
    assert np.median(err) < 4.0, err  # px at 512; the networks see slightly different inputs


@needs_clips
def test_selfie_mask_source_agrees_with_pose_mask(truck):
    v, p = truck
    s = perceive_human(v.frames[:2], mask_source="selfie", detect_hands=False)
    inter = (s.person_mask & p.person_mask[:2]).sum()
    union = (s.person_mask | p.person_mask[:2]).sum()
    assert inter / union > 0.4


@needs_clips
def test_foot_contact_on_walking_frames_labels_some_but_not_all():
    v = read_video(REAL / "truck_kling.mp4", width=256, max_frames=16)
    p = perceive_human(v.frames, detect_hands=False)
    c = foot_contact_from_landmarks(p.body_landmarks, p.body_conf, p.body_found, v.fps)
    assert c.shape == (16, len(FOOT_CONTACT_JOINTS)) and c.dtype == bool
    assert 0 < c.mean() < 1


def _walk(T=12, fps=10.0, height=200.0):
    """A synthetic walker in pixels: the left foot swings (fast) in frames 4-7 and rests otherwise, the right foot
    always rests; head at y=100, feet at y=100 + height."""
    lm = np.zeros((T, 33, 2))
    lm[:, :, 0], lm[:, :, 1] = 100.0, 100.0 + height / 2
    lm[:, 0, 1] = 100.0  # nose
    for name in ("left_ankle", "left_heel", "left_foot_index", "right_ankle", "right_heel", "right_foot_index"):
        lm[:, BODY_LANDMARKS.index(name), 1] = 100.0 + height
    for name in ("left_ankle", "left_heel", "left_foot_index"):
        x = np.full(T, 100.0)
        x[4:8] = 100.0 + 30.0 * np.arange(1, 5)  # 30 px/frame = 1.5 body heights/s at 10 fps
        x[8:] = x[7]
        lm[:, BODY_LANDMARKS.index(name), 0] = x
    return lm, np.ones((T, 33)), np.ones(T, bool), fps


def test_foot_contact_from_synthetic_walk():
    lm, conf, found, fps = _walk()
    c = foot_contact_from_landmarks(lm, conf, found, fps)
    assert c[:, 2:].all()  # right foot rests throughout
    assert not c[3:8, 0].any() and not c[3:8, 1].any()  # frame 3 lifts off: it moves to frame 4
    assert c[:3, :2].all() and c[8:, :2].all()


def test_foot_contact_threshold_scales_with_body_height():
    """The same motion in px is a contact for a tall (near) person and not for a small (far) one."""
    lm, conf, found, fps = _walk(height=200.0)
    slow = lm.copy()
    for name in ("left_ankle", "left_heel", "left_foot_index"):
        i = BODY_LANDMARKS.index(name)
        slow[:, i, 0] = 100.0 + 2.0 * np.arange(len(lm))  # 2 px/frame everywhere
    near = foot_contact_from_landmarks(slow, conf, found, fps)  # threshold 0.15 * 200 / 10 = 3 px/frame
    far_lm = slow.copy()
    far_lm[..., 1] = 100.0 + (slow[..., 1] - 100.0) * 0.4  # body height 80 px -> 1.2 px/frame threshold
    far = foot_contact_from_landmarks(far_lm, conf, found, fps)
    assert near[:, 0].all() and not far[:, 0].any()


def test_foot_contact_compensates_camera_motion():
    """Feet that stand still in the world but slide in the image with a camera pan are contacts when the
    background tracks are given, and not without them; the local background motion near each foot counts."""
    lm, conf, found, fps = _walk()
    T = len(lm)
    shift = 12.0 * np.arange(T)  # the camera pans: the image content moves 12 px/frame
    panned = lm.copy()
    panned[..., 0] += shift[:, None]
    grid = np.stack(np.meshgrid(np.arange(0, 400, 20.0), np.arange(250, 350, 20.0)), -1).reshape(-1, 2)
    tracks = np.repeat(grid[None], T, 0)
    tracks[..., 0] += shift[:, None]
    far = tracks.copy()
    far[..., 1] -= 200  # far background (above the feet) moving differently must not matter
    far[..., 0] += 5.0 * np.arange(T)[:, None]
    bg = np.concatenate([tracks, far], axis=1)
    vis = np.ones(bg.shape[:2], bool)
    c_raw = foot_contact_from_landmarks(panned, conf, found, fps)
    c_comp = foot_contact_from_landmarks(panned, conf, found, fps, background_tracks=bg, background_visibility=vis)
    assert not c_raw[:, 2:].any()
    np.testing.assert_array_equal(c_comp, foot_contact_from_landmarks(lm, conf, found, fps))
