"""Scene bundle: bit-exact round trip, atomic writes, and one test per validation rule naming the field."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from arthoi_jax.errors import BundleError
from arthoi_jax.io.bundle import SceneBundle, load_bundle, save_bundle, validate_bundle
from tests.factories import tiny_bundle


def assert_bundles_equal(a: SceneBundle, b: SceneBundle):
    def walk(x, y, path):
        if dataclasses.is_dataclass(x):
            assert type(x) is type(y), path
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name), getattr(y, f.name), f"{path}.{f.name}")
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, path
            assert x.tobytes() == y.tobytes(), path
        else:
            assert x == y and type(x) is type(y), path

    walk(a, b, "bundle")


@pytest.mark.parametrize("optional", [True, False])
def test_round_trip_is_bit_exact(tmp_path, optional):
    b = tiny_bundle(optional=optional)
    save_bundle(b, tmp_path / "b")
    assert_bundles_equal(b, load_bundle(tmp_path / "b"))


def test_save_refuses_to_overwrite_and_replaces_atomically(tmp_path):
    b = tiny_bundle()
    save_bundle(b, tmp_path / "b")
    with pytest.raises(BundleError, match=r"a bundle already exists there; pass overwrite=True"):
        save_bundle(tiny_bundle(seed=1), tmp_path / "b")
    assert_bundles_equal(b, load_bundle(tmp_path / "b"))
    b2 = tiny_bundle(seed=1)
    save_bundle(b2, tmp_path / "b", overwrite=True)
    assert_bundles_equal(b2, load_bundle(tmp_path / "b"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folders left behind


def test_invalid_bundle_is_not_written(tmp_path):
    bad = dataclasses.replace(tiny_bundle(), fps=-1.0)
    with pytest.raises(BundleError, match="fps"):
        save_bundle(bad, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_load_missing_folder(tmp_path):
    with pytest.raises(BundleError, match=r"not a scene bundle \(missing meta.json\)"):
        load_bundle(tmp_path / "nothing")


def test_load_bad_meta_and_version(tmp_path):
    save_bundle(tiny_bundle(), tmp_path / "b")
    meta = tmp_path / "b" / "meta.json"
    good = meta.read_text()
    meta.write_text(good.replace('"version": 2', '"version": 99'))
    with pytest.raises(BundleError, match=r"bundle version 99 is not supported \(this code reads 1, 2\)"):
        load_bundle(tmp_path / "b")
    meta.write_text("{not json")
    with pytest.raises(BundleError, match=r"meta.json: unreadable"):
        load_bundle(tmp_path / "b")
    meta.write_text("[1, 2]")
    with pytest.raises(BundleError, match=r"meta.json: expected a JSON object"):
        load_bundle(tmp_path / "b")


def test_load_corrupt_and_incomplete_arrays(tmp_path):
    save_bundle(tiny_bundle(optional=False), tmp_path / "b")
    arrays = tmp_path / "b" / "arrays.npz"
    data = dict(np.load(arrays))
    del data["depth"]
    np.savez(arrays, **data)
    with pytest.raises(BundleError, match=r"missing field 'depth'"):
        load_bundle(tmp_path / "b")
    arrays.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BundleError, match=r"arrays.npz: unreadable"):
        load_bundle(tmp_path / "b")


def test_meta_is_readable_json(tmp_path):
    save_bundle(tiny_bundle(), tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    assert meta["version"] == 2 and meta["fps"] == 30.0 and meta["gt"]["joint_types"] == ["revolute", "prismatic"]


B = tiny_bundle()
_arrays = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.bool_, np.int64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["frames", "K", "object_masks", "human_masks", "tracks", "visibility", "depth",
                              "hand_keypoints", "foot_contact"]), value=_arrays | st.none() | st.integers())
def test_property_any_field_value_validates_or_raises_bundle_error(field, value):
    try:
        validate_bundle(dataclasses.replace(B, **{field: value}))
    except BundleError as e:
        assert str(e)


def test_version_1_bundle_still_loads(tmp_path):
    b = tiny_bundle(optional=False)
    save_bundle(b, tmp_path / "b")
    meta = tmp_path / "b" / "meta.json"
    meta.write_text(meta.read_text().replace('"version": 2', '"version": 1'))
    loaded = load_bundle(tmp_path / "b")
    assert loaded.T_cam_world is None and loaded.body_landmarks is None
    assert_bundles_equal(b, loaded)
