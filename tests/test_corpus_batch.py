"""Bad inputs to a batch run: each case builds the input and asserts the named error and its message."""

import numpy as np
import pytest
import yaml

from arthoi_jax import pipeline
from arthoi_jax.batch import sharding
from arthoi_jax.batch.padding import pad_scene
from arthoi_jax.errors import ConfigError, InputError, OutputExistsError
from arthoi_jax.render.types import Gaussians
from arthoi_jax.stage1 import Stage1Scene


def _write(tmp_path, batch: dict, name="b.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"scene": {"name": "suite"}, "batch": batch, "output": {"progress": False}}))
    return path


def test_batch_rejects_repeated_scene_names(tmp_path):
    cfg = _write(tmp_path, {"scenes": [{"name": "door"}, {"name": "door", "overrides": ["synthetic.seed=1"]}]})
    with pytest.raises(ConfigError, match=r"batch.scenes: names must be unique .*repeated: \['door'\]"):
        pipeline.run(cfg, out=tmp_path / "run")


def test_batch_rejects_an_unknown_override_key_naming_the_scene(tmp_path):
    cfg = _write(tmp_path, {"scenes": [{"name": "ok"}, {"name": "typo", "overrides": ["stage1.lrr=1e-3"]}]})
    with pytest.raises(ConfigError, match=r"batch.scenes\[1\] \(typo\): unknown key 'stage1.lrr' \(did you mean 'lr'"):
        pipeline.run(cfg, out=tmp_path / "run")


def test_batch_rejects_a_bundle_scene_without_a_bundle_path(tmp_path):
    cfg = _write(tmp_path, {"scenes": [{"name": "x", "overrides": ["scene.source=bundle"]}]})
    with pytest.raises(ConfigError, match=r"batch.scenes\[0\] \(x\): scene.bundle is required"):
        pipeline.run(cfg, out=tmp_path / "run")


def test_batch_rejects_an_override_without_equals_sign(tmp_path):
    cfg = _write(tmp_path, {"scenes": [{"name": "x", "overrides": ["synthetic.object"]}]})
    with pytest.raises(ConfigError, match=r"batch.scenes\[0\] \(x\): --set 'synthetic.object': expected key=value"):
        pipeline.run(cfg, out=tmp_path / "run")


def test_batch_rejects_a_single_stage(tmp_path):
    cfg = _write(tmp_path, {"scenes": [{"name": "x"}]})
    with pytest.raises(ConfigError, match=r"--stage 'stage1': a batch run .* runs every stage"):
        pipeline.run(cfg, stage="stage1", out=tmp_path / "run")


def test_batch_refuses_a_folder_holding_a_batch_of_another_config(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "batch_config.yaml").write_text("scene: {name: other}\n")
    cfg = _write(tmp_path, {"scenes": [{"name": "x"}]})
    with pytest.raises(OutputExistsError, match=r"holds a batch run of another config .*--overwrite"):
        pipeline.run(cfg, out=tmp_path / "run")


def test_batch_rejects_more_devices_than_jax_sees():
    with pytest.raises(ConfigError, match=r"batch.devices: 99 requested, JAX sees 1 \(cpu\)"):
        sharding.scene_mesh(99)


def test_batch_config_rejects_zero_scenes_per_program(tmp_path):
    cfg = _write(tmp_path, {"max_scenes": 0, "scenes": [{"name": "x"}]})
    with pytest.raises(ConfigError, match=r"batch.max_scenes: 0 is out of range; allowed: \[1, inf\]"):
        pipeline.run(cfg, out=tmp_path / "run")


def test_padding_rejects_a_scene_larger_than_its_bucket():
    n = 300
    g = Gaussians(means=np.zeros((n, 3), np.float32), quats=np.zeros((n, 4), np.float32),
                  log_scales=np.zeros((n, 3), np.float32), opacity_logits=np.zeros(n, np.float32),
                  colors=np.zeros((n, 3), np.float32))
    scene = Stage1Scene(gaussians=g, valid=np.ones(n, bool), weights=np.ones((n, 2), np.float32),
                        part_of=np.zeros(n, np.int32), track_points=np.zeros((4, 3), np.float32),
                        track_part=np.zeros(4, np.int32), pairs=np.zeros((4, 2), np.int32),
                        pair_valid=np.zeros(4, bool), binding_radius=np.float32(0.05), K=np.eye(3),
                        K_render=np.eye(3), joint_type=np.zeros(1, np.int32), joint_axis=np.zeros((1, 3)),
                        joint_pivot=np.zeros((1, 3)))
    with pytest.raises(InputError, match=r"padding: 300 rows do not fit in a bucket of 256"):
        pad_scene(scene, 256, 256, 256)


def test_padding_fills_padded_gaussians_as_invisible_static_and_unit_quaternion():
    n = 3
    g = Gaussians(means=np.ones((n, 3), np.float32), quats=np.tile([[0.0, 1, 0, 0]], (n, 1)).astype(np.float32),
                  log_scales=np.zeros((n, 3), np.float32), opacity_logits=np.zeros(n, np.float32),
                  colors=np.ones((n, 3), np.float32))
    scene = Stage1Scene(gaussians=g, valid=np.ones(n, bool), weights=np.tile([[0.0, 1.0]], (n, 1)),
                        part_of=np.ones(n, np.int32), track_points=np.ones((2, 3)), track_part=np.ones(2, np.int32),
                        pairs=np.ones((1, 2), np.int32), pair_valid=np.ones(1, bool), binding_radius=np.float32(0.05),
                        K=np.eye(3), K_render=np.eye(3), joint_type=np.zeros(1, np.int32),
                        joint_axis=np.zeros((1, 3)), joint_pivot=np.zeros((1, 3)))
    p = pad_scene(scene, 8, 4, 4)
    assert p.valid.tolist() == [True] * 3 + [False] * 5 and not p.pair_valid[1:].any()
    np.testing.assert_array_equal(p.weights[3:], np.tile([[1.0, 0.0]], (5, 1)))
    np.testing.assert_array_equal(p.gaussians.quats[3:], np.tile([[1.0, 0, 0, 0]], (5, 1)))
    assert (p.gaussians.opacity_logits[3:] == -20.0).all() and (p.track_part[2:] == 0).all()
    np.testing.assert_array_equal(p.gaussians.quats[:3], g.quats)
