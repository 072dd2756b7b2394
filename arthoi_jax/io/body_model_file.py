"""SMPL-X model files on disk: the only place that reads or writes them.

* `.npz` (the official SMPL-X download): read with `allow_pickle=False`; only the numeric keys the model needs
  are read, so the object arrays some official files carry (e.g. `joint2num`) are never unpickled.
* `.pkl`: read by a restricted unpickler that admits numpy arrays and scipy sparse matrices only. Old pickles
  that reference chumpy are refused with a message saying how to convert them; chumpy is never imported.
* The license-free body (`arthoi_jax.body.synthetic_model`) is written as an `.npz` in the official key layout,
  generated on demand into a cache folder the caller chooses (`license_free_model_file`).

`load_body_model(cfg, cache_dir)` turns a `BodyConfig` into a `BodyModel`.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from arthoi_jax.body.model import CONTOUR_KEYS, REQUIRED_KEYS, BodyModel
from arthoi_jax.body.synthetic_model import license_free_smplx_arrays
from arthoi_jax.errors import ConfigError, ModelFileError
from arthoi_jax.io.outputs import write_atomic

# Bump when the generator's output changes, so stale cached files are not reused.
LICENSE_FREE_VERSION = 1
_KEYS = REQUIRED_KEYS + CONTOUR_KEYS
_CONVERT_HINT = (
    "convert it once to .npz (download the .npz release from https://smpl-x.is.tue.mpg.de, or in an "
    "environment that has chumpy run: python -c \"import pickle, numpy as np; d = pickle.load(open('IN.pkl', "
    "'rb'), encoding='latin1'); np.savez('OUT.npz', **{k: np.array(v) for k, v in d.items() "
    "if not isinstance(v, str)})\") and point body.model_path at the .npz"
)


def default_cache_dir() -> Path:
    """`$ARTHOI_CACHE` or `~/.cache/arthoi_jax`: where generated models are kept between runs."""
    return Path(os.environ.get("ARTHOI_CACHE", Path.home() / ".cache" / "arthoi_jax"))


def resolve_model_file(path: str | Path, gender: str = "neutral") -> Path:
    """A model file path; a folder is searched for `SMPLX_{GENDER}.npz`, then `.pkl` (smplx's naming)."""
    path = Path(path)
    if path.is_dir():
        for ext in ("npz", "pkl"):
            candidate = path / f"SMPLX_{gender.upper()}.{ext}"
            if candidate.is_file():
                return candidate
        raise ModelFileError(f"{path}: no SMPLX_{gender.upper()}.npz or .pkl in this folder")
    if not path.is_file():
        raise ModelFileError(f"{path}: SMPL-X model file not found")
    return path


def read_model_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The numeric arrays of an SMPL-X file (.npz or chumpy-free .pkl), by their official key names.

    Raises:
      ModelFileError: the file is missing, unreadable, references chumpy, or lacks a required key.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: SMPL-X model file not found")
    if path.suffix == ".npz":
        arrays = _read_npz(path)
    elif path.suffix == ".pkl":
        arrays = _read_pkl(path)
    else:
        raise ModelFileError(f"{path}: unknown model file type {path.suffix!r}; expected .npz or .pkl")
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ModelFileError(f"{path}: missing key(s) {', '.join(missing)}; an SMPL-X model file has "
                             f"{', '.join(REQUIRED_KEYS)}")  # fmt: skip
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k in _KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError(f"{path}: unreadable .npz ({type(e).__name__}: {e})") from None


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy and scipy.sparse reconstruction only; names the first other class it meets."""

    def __init__(self, f, path: Path):
        super().__init__(f, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            raise ModelFileError(f"{self._path}: this pickle stores chumpy objects ({module}.{name}), which "
                                 f"arthoi_jax does not import; {_CONVERT_HINT}")  # fmt: skip
        allowed = (
            module.split(".")[0] == "numpy"
            or module.startswith("scipy.sparse")
            or (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
                                  ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode")}
        )  # fmt: skip
        if not allowed:
            raise ModelFileError(f"{self._path}: the pickle references {module}.{name}; only numpy arrays and "
                                 f"scipy sparse matrices are accepted in a model file")  # fmt: skip
        return super().find_class(module, name)


def _read_pkl(path: Path) -> dict[str, np.ndarray]:
    try:
        data = _ArrayUnpickler(io.BytesIO(path.read_bytes()), path).load()
    except ModelFileError:
        raise
    except Exception as e:  # a truncated or foreign pickle fails in many ways
        raise ModelFileError(f"{path}: unreadable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a pickled dict of arrays, got {type(data).__name__}")
    out = {}
    for k, v in data.items():
        if k not in _KEYS:
            continue
        out[k] = np.asarray(v.toarray() if hasattr(v, "toarray") else v)
    return out


def write_model_file(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Writes `arrays` as a compressed .npz (atomically), keyed as given."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(Path(path), buf.getvalue())
    return Path(path)


def license_free_model_file(cache_dir: str | Path | None = None) -> Path:
    """Path of the license-free SMPL-X-format body, generated into `cache_dir` on first use.

    The file is `<cache_dir>/license_free_smplx_v<version>/SMPLX_NEUTRAL.npz`, so the folder can be passed to
    `smplx.SMPLX(model_path=folder, gender='neutral', ext='npz')` as well.
    """
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / (
        f"license_free_smplx_v{LICENSE_FREE_VERSION}"
    )
    path = folder / "SMPLX_NEUTRAL.npz"
    if not path.is_file():
        write_model_file(path, license_free_smplx_arrays())
    return path


def load_body_model(cfg, cache_dir: str | Path | None = None) -> BodyModel:
    """The `BodyModel` a `BodyConfig` describes (the license-free body when `cfg.model_path` is None).

    Raises:
      ConfigError: a gendered model is asked for without a model file (the license-free body is neutral).
      ModelFileError: the file is unusable (see `read_model_arrays`, `BodyModel.from_arrays`).
    """
    if cfg.model_path is None:
        if cfg.gender != "neutral":
            raise ConfigError(f"body.gender: {cfg.gender!r} needs an SMPL-X model file in body.model_path; "
                              f"the license-free body is neutral")  # fmt: skip
        path = license_free_model_file(cache_dir)
    else:
        path = resolve_model_file(cfg.model_path, cfg.gender)
    return BodyModel.from_arrays(
        read_model_arrays(path), num_betas=cfg.num_betas, num_expression=cfg.num_expression,
        use_pca=cfg.use_pca, num_pca_comps=cfg.num_pca_comps, flat_hand_mean=cfg.flat_hand_mean,
        use_face_contour=cfg.use_face_contour, gender=cfg.gender, source=str(path))  # fmt: skip
