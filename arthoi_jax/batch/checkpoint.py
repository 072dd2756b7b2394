"""Checkpoints of a batch's Stage I progress with orbax-checkpoint: a flat dict of numpy arrays (frame, chunk,
per-scene results so far, the batched optimizer state; see stage1_batch.snapshot_arrays) saved every
`batch.checkpoint_every` optimization steps and when Stage I of the bucket ends. orbax writes each step into a
temporary folder and renames it when complete, so a run killed mid-save restores the previous step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp

log = logging.getLogger("arthoi_jax")


class BatchCheckpointer:
    """Saves and restores one bucket's progress under `directory` (its two latest steps are kept)."""

    def __init__(self, directory: Path, every_steps: int):
        self.every_steps = every_steps
        self._since = 0
        options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def restore(self) -> dict[str, np.ndarray] | None:
        """The latest saved arrays, or None when nothing was saved."""
        step = self._manager.latest_step()
        if step is None:
            return None
        arrays = self._manager.restore(step, args=ocp.args.StandardRestore())
        log.info("checkpoint: resumed from %s, step %d", self._manager.directory, step)
        return {k: np.asarray(v) for k, v in arrays.items()}

    def save(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        """Saves now under `step` (increasing)."""
        self._manager.save(step, args=ocp.args.StandardSave(arrays), force=True)
        self._manager.wait_until_finished()
        self._since = 0

    def maybe_save(self, step: int, arrays_fn, steps_run: int) -> bool:
        """Counts `steps_run` optimization steps and saves `arrays_fn()` once every_steps have accumulated."""
        self._since += steps_run
        if self._since < self.every_steps:
            return False
        self.save(step, arrays_fn())
        return True

    def close(self) -> None:
        self._manager.close()
