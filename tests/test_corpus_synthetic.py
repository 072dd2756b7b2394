"""Bad-input corpus for the synthetic scene generator: one case per test, each naming what it feeds in."""

import dataclasses

import numpy as np
import pytest

from arthoi_jax.config import SyntheticConfig, load_config
from arthoi_jax.errors import ConfigError, InputError
from arthoi_jax.synthetic.scene import build_scene, generate_scene

SMALL = {"width": 64, "height": 48, "num_frames": 3}
CAMERA_KEYS = r"synthetic\.camera_distance_m, camera_height_m, camera_yaw_deg"


def test_synthetic_rejects_unknown_object_type(tmp_path):
    path = tmp_path / "chair.yaml"
    path.write_text("synthetic:\n  object: chair\n")
    with pytest.raises(ConfigError, match=r"synthetic\.object: 'chair' is not allowed; allowed values: 'door', "
                                          r"'drawer', 'fridge', 'lid', 'cabinet2'"):
        load_config(path)


def test_synthetic_rejects_misspelt_texture_override():
    with pytest.raises(ConfigError, match=r"synthetic\.texture: 'lowtex' is not allowed; allowed values: "
                                          r"'textured', 'low'"):
        load_config(None, ["synthetic.texture=lowtex"])


def test_synthetic_rejects_zero_frames():
    with pytest.raises(ConfigError, match=r"synthetic\.num_frames: 0 is out of range; allowed: \[2, 2000\]"):
        generate_scene(SyntheticConfig(num_frames=0))


def test_synthetic_rejects_nan_field_of_view():
    with pytest.raises(ConfigError, match=r"synthetic\.fov_deg: expected a finite number, got nan"):
        load_config(None, ["synthetic.fov_deg=.nan"])


def test_synthetic_rejects_config_of_wrong_type():
    with pytest.raises(ConfigError, match=r"synthetic: expected a SyntheticConfig, got dict"):
        generate_scene({"object": "door"})


def test_synthetic_rejects_camera_inside_object():
    cfg = SyntheticConfig(object="drawer", camera_distance_m=0.1, camera_height_m=0.5, **SMALL)
    with pytest.raises(ConfigError, match=CAMERA_KEYS + r": camera at \[0\.057, 0\.382, 0\.5\] m \(room frame, "
                                          r"z up\) is inside the drawer's bounding box"):
        generate_scene(cfg)


def test_synthetic_rejects_object_reaching_behind_camera():
    cfg = SyntheticConfig(object="door", camera_distance_m=0.4, camera_height_m=1.0, **SMALL)
    with pytest.raises(ConfigError, match=CAMERA_KEYS + r": .* part of the door is -0\.0\d+ m deep, behind the "
                                          r"near plane at 0\.05 m"):
        generate_scene(cfg)


def test_synthetic_rejects_moving_part_out_of_view():
    cfg = SyntheticConfig(object="door", camera_distance_m=50.0, width=32, height=32, num_frames=2)
    with pytest.raises(ConfigError, match=r"moving part 'door' covers 0 pixels at frame 0 \(need >= 16\)"):
        generate_scene(cfg)


def test_synthetic_rejects_human_without_a_body_mesh():
    with pytest.raises(ConfigError, match=r"synthetic\.human: true is not supported by generate_scene"):
        generate_scene(SyntheticConfig(human=True, **SMALL))


def test_synthetic_scene_rejects_part_with_taken_id():
    scene = build_scene(SyntheticConfig(**SMALL))
    body = scene.parts[1]
    with pytest.raises(InputError, match=r"part 'body2': id 1 is already used by another part"):
        scene.with_part(dataclasses.replace(body, name="body2"))


def test_synthetic_zero_motion_gives_a_still_scene():
    b = generate_scene(SyntheticConfig(object="cabinet2", max_angle_deg=0.0, **SMALL))
    assert np.array_equal(b.gt.joint_values, np.zeros((3, 2)))
    np.testing.assert_array_equal(b.gt.part_poses, np.broadcast_to(np.eye(4), (3, 2, 4, 4)))
    assert np.array_equal(b.frames[0], b.frames[-1]) and np.array_equal(b.gt.part_ids[0], b.gt.part_ids[-1])
    assert np.array_equal(b.tracks[0], b.tracks[-1]) and b.visibility.all()


def test_synthetic_more_tracks_than_pixels_gives_every_inner_pixel_once():
    b = generate_scene(SyntheticConfig(object="drawer", num_tracks=100000, **SMALL))
    xy = b.tracks[0]
    M = len(xy)
    assert 50 < M < 64 * 48 // 2
    assert len(np.unique(xy, axis=0)) == M and b.visibility[0].all()
    # Every track sits 2 px inside its part: its 5x5 neighbourhood shows the same part.
    col, row = xy.astype(int).T
    ids = np.pad(b.gt.part_ids[0], 2)
    for dy in range(5):
        for dx in range(5):
            assert np.array_equal(ids[row + dy, col + dx], b.gt.track_part)
