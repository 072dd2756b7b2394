"""Config loading: defaults, YAML + overrides, and one error per validation rule, naming the key."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from arthoi_jax.config import Config, from_dict, load_config, to_dict
from arthoi_jax.errors import ConfigError


def write(tmp_path, data, name="c.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_defaults_are_the_papers():
    cfg = load_config()
    assert (cfg.stage1.lr, cfg.stage1.iters_per_frame, cfg.stage1.grad_clip) == (1e-4, 200, 1.0)
    assert (cfg.stage1.lambda_r, cfg.stage1.lambda_tr, cfg.stage1.lambda_a, cfg.stage1.lambda_s) == (1.0, 2.0, 0.05, 1.0)
    assert (cfg.segmentation.dynamic_px, cfg.segmentation.static_px) == (5.0, 2.0)
    assert (cfg.segmentation.quasi_static_percentile, cfg.segmentation.quasi_static_min_px) == (10.0, 1.0)
    assert cfg.segmentation.binding_radius_m == 0.05
    s2 = cfg.stage2
    assert (s2.iters, s2.lr_pose, s2.lr_camera) == (1000, 1e-3, 1e-4)
    assert (s2.lambda_s, s2.lambda_k, s2.lambda_p, s2.lambda_fs, s2.lambda_c) == (1e4, 1e4, 1.0, 10.0, 1e5)
    assert cfg.render.eps2d == 0.3


def test_yaml_and_overrides(tmp_path):
    p = write(tmp_path, {"scene": {"name": "d"}, "stage1": {"lr": 1e-3}})
    cfg = load_config(p, ["stage1.iters_per_frame=5", "render.background=[1, 1, 1]", "synthetic.object=drawer"])
    assert cfg.scene.name == "d" and cfg.stage1.lr == 1e-3 and cfg.stage1.iters_per_frame == 5
    assert cfg.render.background == (1.0, 1.0, 1.0) and cfg.synthetic.object == "drawer"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stage1.lr = 1.0


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    # YAML 1.1 reads "1e-4" as a string; the loader must still accept it as a float.
    assert load_config(write(tmp_path, "stage1:\n  lr: 1e-4\n")).stage1.lr == 1e-4


def test_base_inheritance(tmp_path):
    write(tmp_path, {"stage1": {"lr": 0.5, "lambda_a": 0.0}}, "base.yaml")
    cfg = load_config(write(tmp_path, {"base": "base.yaml", "stage1": {"lr": 0.25}}))
    assert cfg.stage1.lr == 0.25 and cfg.stage1.lambda_a == 0.0


def test_round_trip_through_dict():
    cfg = load_config(None, ["synthetic.object=lid", "render.background=[0.5, 0.5, 0.5]"])
    assert from_dict(Config, to_dict(cfg)) == cfg


def test_shipped_configs_load():
    from pathlib import Path

    files = sorted(Path(__file__).parent.parent.glob("configs/**/*.yaml"))
    assert files, "no configs shipped"
    for f in files:
        load_config(f)


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_sections = st.sampled_from([f.name for f in dataclasses.fields(Config)] + ["bogus"])
_keys = st.sampled_from(
    sorted({f.name for sec in dataclasses.fields(Config) for f in dataclasses.fields(sec.type if isinstance(sec.type, type) else type(sec.default))} | {"zzz"})
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_sections, st.dictionaries(_keys, _yaml_values, max_size=4) | _yaml_values, max_size=4))
def test_property_any_input_loads_or_raises_config_error(data):
    try:
        cfg = from_dict(Config, data)
    except ConfigError as e:
        assert str(e)
    else:
        assert isinstance(cfg, Config)


def test_the_depth_anchor_needs_the_depth_start():
    with pytest.raises(ConfigError, match=r"stage2\.lambda_depth.*stage2\.align: keypoints"):
        load_config(overrides=["stage2.lambda_depth=1e4", "stage2.align=keypoints"])
    assert load_config(overrides=["stage2.lambda_depth=1e4"]).stage2.lambda_depth == 1e4
    door_hoi = Path(__file__).parent.parent / "configs" / "synthetic" / "door_hoi.yaml"
    assert load_config(door_hoi, ["stage2.align=keypoints", "stage2.lambda_depth=0"]).stage2.align == "keypoints"
