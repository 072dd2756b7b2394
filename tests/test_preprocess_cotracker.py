"""CoTracker adapter: the package is optional (not on the package index), so its absence is tested, and the
adapter's own work (resolution change, pixel convention, short-video padding) runs against a stand-in
predictor with CoTracker's calling convention."""

import builtins

import numpy as np
import pytest
import torch

from arthoi_jax.errors import InputError, MissingDependencyError
from arthoi_jax.preprocess.cotracker import CoTrackerAdapter


class FakePredictor(torch.nn.Module):
    """CoTracker's predictor contract: video [1, T, 3, h, w] float 0..255, queries [1, N, 3] (t, x, y) with
    integer pixel centres -> tracks [1, T, N, 2], visibility [1, T, N]. Moves every point by (1, 0.5) px/frame."""

    def __init__(self, interp_shape=(24, 32), window_len=8):
        super().__init__()
        self.interp_shape = interp_shape
        self.model = torch.nn.Module()
        self.model.window_len = window_len
        self.seen = []

    def forward(self, video, queries):
        self.seen.append((tuple(video.shape), video.dtype, float(video.max()), queries.clone()))
        T = video.shape[1]
        steps = torch.arange(T, dtype=torch.float32)[:, None, None] * torch.tensor([1.0, 0.5])
        tracks = queries[0, :, 1:][None] + steps
        return tracks[None], torch.ones(1, T, queries.shape[1], dtype=torch.bool)


def frames(T=5, H=48, W=64):
    return np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)


def test_missing_package_names_what_to_install(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_cotracker(name, *args, **kw):
        if name.startswith("cotracker"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_cotracker)
    with pytest.raises(MissingDependencyError, match=r"CoTracker is not installed .*facebookresearch/co-tracker.*"
                                                     r"scaled_offline\.pth"):
        CoTrackerAdapter.from_checkpoint(tmp_path / "scaled_offline.pth")


def test_resolution_and_pixel_convention_round_trip():
    """48x64 frames -> 24x32 model input (factor 1/2). Our (10.5, 20.5) is (5.25, 10.25) continuous at half size,
    (4.75, 9.75) with integer centres; the fake moves it by (1, 0.5)/frame there, i.e. (2, 1)/frame here."""
    fake = FakePredictor()
    tracks, vis = CoTrackerAdapter(fake, device="cpu").track(frames(), np.array([[10.5, 20.5], [0.0, 48.0]]))
    (shape, dtype, vmax, queries), = fake.seen
    assert shape == (1, 8, 3, 24, 32) and dtype == torch.float32 and vmax > 1  # 0..255, padded to the window
    np.testing.assert_allclose(queries[0].numpy(), [[0, 4.75, 9.75], [0, -0.5, 23.5]], atol=1e-6)
    assert tracks.shape == (5, 2, 2) and tracks.dtype == np.float32 and vis.shape == (5, 2) and vis.dtype == bool
    t = np.arange(5)[:, None]
    np.testing.assert_allclose(tracks[:, 0], np.c_[10.5 + 2 * t, 20.5 + 1 * t], atol=1e-5)


def test_long_video_not_padded_and_queries_checked():
    fake = FakePredictor(window_len=4)
    CoTrackerAdapter(fake, device="cpu").track(frames(T=6), np.array([[1.5, 1.5]]))
    assert fake.seen[0][0][1] == 6
    with pytest.raises(InputError, match="queries: point 0 at .* outside the 64x48 image"):
        CoTrackerAdapter(fake, device="cpu").track(frames(), np.array([[70.0, 1.0]]))
    with pytest.raises(InputError, match="need at least 2 frames"):
        CoTrackerAdapter(fake, device="cpu").track(frames(T=1), np.array([[1.5, 1.5]]))


@pytest.fixture()
def fake_cotracker_package(monkeypatch):
    """A stand-in `cotracker.predictor` module: its CoTrackerPredictor builds a small model from
    (offline, window_len), as the real one builds CoTrackerThreeOffline, so from_checkpoint's loading runs."""
    import sys
    import types

    class Predictor(FakePredictor):
        def __init__(self, checkpoint=None, offline=True, v2=False, window_len=60):
            assert checkpoint is None and offline and not v2  # weights are loaded by the adapter, not here
            super().__init__(window_len=window_len)
            self.model.fnet = torch.nn.Conv2d(3, 4, 3)

    package, module = types.ModuleType("cotracker"), types.ModuleType("cotracker.predictor")
    module.CoTrackerPredictor = Predictor
    monkeypatch.setitem(sys.modules, "cotracker", package)
    monkeypatch.setitem(sys.modules, "cotracker.predictor", module)
    return Predictor


def test_from_checkpoint_loads_weights_and_rejects_others(fake_cotracker_package, tmp_path):
    from arthoi_jax.errors import ModelFileError

    reference = fake_cotracker_package()
    torch.nn.init.constant_(reference.model.fnet.weight, 0.25)
    torch.save({"model": reference.model.state_dict()}, tmp_path / "scaled_offline.pth")
    adapter = CoTrackerAdapter.from_checkpoint(tmp_path / "scaled_offline.pth", device="cpu")
    assert torch.all(adapter.predictor.model.fnet.weight == 0.25)
    assert adapter.predictor.model.window_len == 60
    torch.save({"other.weight": torch.zeros(2)}, tmp_path / "wrong.pth")
    with pytest.raises(ModelFileError, match=r"wrong\.pth: weights do not fit the CoTracker3 offline model"):
        CoTrackerAdapter.from_checkpoint(tmp_path / "wrong.pth", device="cpu")
    with pytest.raises(ModelFileError, match=r"missing\.pth: CoTracker3 checkpoint not found"):
        CoTrackerAdapter.from_checkpoint(tmp_path / "missing.pth", device="cpu")
