"""Bad-input corpus, configs: each case is a broken YAML or override; the ConfigError names the key."""

import pytest
import yaml

from arthoi_jax.config import load_config
from arthoi_jax.errors import ConfigError


def write(tmp_path, data, name="c.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


@pytest.mark.parametrize(
    "data, match",
    [
        ({"stage1": {"lrr": 1}}, r"unknown key 'stage1.lrr' \(did you mean 'lr'\?\); allowed keys: lr,"),
        ({"stages": {}}, r"unknown key 'stages'.*allowed keys: scene, synthetic"),
        ({"stage1": {"iters_per_frame": 2.5}}, r"stage1.iters_per_frame: expected an integer, got 2.5"),
        ({"stage1": {"iters_per_frame": True}}, r"stage1.iters_per_frame: expected an integer, got True"),
        ({"stage1": {"lr": "fast"}}, r"stage1.lr: expected a number, got 'fast'"),
        ({"stage1": {"lr": 0.0}}, r"stage1.lr: 0.0 is out of range; allowed: \(0.0, inf\]"),
        ({"stage1": {"lr": float("nan")}}, r"stage1.lr: expected a finite number"),
        ({"segmentation": {"quasi_static_percentile": 150}}, r"quasi_static_percentile: 150.0 is out of range; allowed: \[0.0, 100.0\]"),
        ({"synthetic": {"object": "window"}}, r"synthetic.object: 'window' is not allowed; allowed values: 'door', 'drawer'"),
        ({"stage1": {"articulation": "spline"}}, r"allowed values: 'free_se3', 'revolute', 'prismatic', 'auto'"),
        ({"render": {"background": [1, 1]}}, r"render.background: expected a list of 3 values, got 2"),
        ({"render": {"background": "white"}}, r"render.background: expected a list, got 'white'"),
        ({"output": {"video": "yes"}}, r"output.video: expected true or false, got 'yes'"),
        ({"scene": {"name": 3}}, r"scene.name: expected a string, got 3"),
        ({"stage1": 5}, r"stage1: expected a mapping of keys to values, got int"),
    ],
)
def test_config_rejects(tmp_path, data, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, data))


@pytest.mark.parametrize(
    "override, match",
    [
        ("stage1.lr", r"expected key=value"),
        ("stage1.lr.x=1", r"stage1.lr: expected a number, got \{'x': 1\}"),
        ("stage1.lr=[1", r"stage1.lr: cannot parse value"),
        ("stage1.nope=1", r"unknown key 'stage1.nope'"),
    ],
)
def test_config_rejects_override(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_config_rejects_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        load_config(write(tmp_path, "stage1: [1, 2\n"))
    with pytest.raises(ConfigError, match=r"expected a mapping at the top level, got list"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    loop = write(tmp_path, {"base": "c.yaml"})
    with pytest.raises(ConfigError, match=r"'base' chain loops back"):
        load_config(loop)


