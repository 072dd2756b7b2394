"""Stage order, run folders and outputs. The only module besides arthoi_jax.io that touches the disk.

Each stage is a function `(ctx, out_dir) -> None` that reads what earlier stages left in the run folder
and writes its own results into `out_dir` (a temporary folder renamed into place when the stage ends).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable

import yaml

from arthoi_jax import config as config_lib
from arthoi_jax.errors import ConfigError, InputError
from arthoi_jax.io import bundle as bundle_io
from arthoi_jax.io import media
from arthoi_jax.io.outputs import atomic_dir, prepare_run_dir, write_atomic

log = logging.getLogger("arthoi_jax")


@dataclasses.dataclass(frozen=True)
class RunContext:
    config: config_lib.Config
    run_dir: Path
    overwrite: bool

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / name

    def bundle(self) -> bundle_io.SceneBundle:
        """The scene bundle of this run: the generated/preprocessed one, or the configured file."""
        for stage in ("preprocess", "generate"):
            p = self.stage_dir(stage) / "bundle"
            if p.exists():
                return bundle_io.load_bundle(p)
        if self.config.scene.source == "bundle":
            return bundle_io.load_bundle(self.config.scene.bundle)
        raise InputError(f"{self.run_dir}: no scene bundle yet; run the 'generate' or 'preprocess' stage first")


def _generate(ctx: RunContext, out: Path) -> None:
    from arthoi_jax.synthetic.scene import generate_scene

    b = generate_scene(ctx.config.synthetic)
    bundle_io.save_bundle(b, out / "bundle")
    media.write_video(out / "preview.mp4", b.frames, b.fps)
    media.write_png(out / "preview.png", media.contact_sheet(b.frames))
    log.info("generated %s: %d frames %dx%d, %d tracks", ctx.config.synthetic.object, b.num_frames,
             b.image_size[1], b.image_size[0], b.tracks.shape[1])


# Stages in run order, and which scene sources run them.
STAGES: dict[str, tuple[Callable[[RunContext, Path], None], tuple[str, ...]]] = {
    "generate": (_generate, ("synthetic",)),
}


def run(config_path, *, overrides=(), stage: str = "all", out=None, resume=False, overwrite=False) -> Path:
    """Runs one stage or all of them for the config; returns the run folder."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = config_lib.load_config(config_path, overrides)
    if stage != "all" and stage not in STAGES:
        raise ConfigError(f"--stage {stage!r} is not a stage; allowed: all, {', '.join(STAGES)}")
    if cfg.scene.source == "bundle" and not cfg.scene.bundle:
        raise ConfigError("scene.bundle: required when scene.source is 'bundle'")
    if cfg.scene.source == "video" and not cfg.scene.video:
        raise ConfigError("scene.video: required when scene.source is 'video'")
    run_dir = Path(out) if out else Path("out") / cfg.scene.name
    # A single named stage writes into an existing run folder; it still refuses to replace its own results.
    run_dir = prepare_run_dir(run_dir, resume=resume or stage != "all", overwrite=overwrite)
    ctx = RunContext(cfg, run_dir, overwrite)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False).encode())
    names = [stage] if stage != "all" else [n for n, (_, sources) in STAGES.items() if cfg.scene.source in sources]
    for name in names:
        fn, _ = STAGES[name]
        if resume and stage == "all" and ctx.stage_dir(name).exists():
            log.info("%s: done before, kept (--resume)", name)
            continue
        log.info("stage %s", name)
        with atomic_dir(ctx.stage_dir(name), overwrite=overwrite) as tmp:
            fn(ctx, tmp)
    return run_dir
