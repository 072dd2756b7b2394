"""Checkpoints of a batch's Stage I or Stage II progress with orbax-checkpoint: a flat dict of numpy arrays (the
loop's position, per-scene results so far, the batched optimizer state; see `progress_arrays`) saved every
`batch.checkpoint_every` optimization steps and when the stage of the bucket ends. orbax writes each step into a
temporary folder and renames it when complete, so a run killed mid-save restores the previous step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jax
import numpy as np

log = logging.getLogger("arthoi_jax")


class BatchCheckpointer:
    """Saves and restores one bucket's progress under `directory` (its two latest steps are kept)."""

    def __init__(self, directory: Path, every_steps: int):
        # Imported here: orbax brings absl, whose import takes over the root logger (see logging.basicConfig);
        # only a batch run that checkpoints needs it.
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.every_steps = every_steps
        self._since = 0
        options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def restore(self) -> dict[str, np.ndarray] | None:
        """The latest saved arrays, or None when nothing was saved."""
        step = self._manager.latest_step()
        if step is None:
            return None
        arrays = self._manager.restore(step, args=self._ocp.args.StandardRestore())
        log.info("checkpoint: resumed from %s, step %d", self._manager.directory, step)
        return {k: np.asarray(v) for k, v in arrays.items()}

    def save(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        """Saves now under `step` (increasing)."""
        self._manager.save(step, args=self._ocp.args.StandardSave(arrays), force=True)
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


def progress_arrays(progress: dict) -> dict[str, np.ndarray]:
    """A loop's progress (numpy arrays and, under "state", the batched optimizer state pytree) as a flat dict of
    numpy arrays (the state's leaves numbered), for a checkpoint."""
    out = {k: np.asarray(v) for k, v in progress.items() if k != "state"}
    if "state" in progress:
        out.update({f"state_{i:03d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(progress["state"]))})
    return out


def progress_from_arrays(arrays: dict[str, np.ndarray], state_like) -> dict:
    """The inverse of progress_arrays; state_like: any state of the same pytree structure (its leaves unused)."""
    progress = {k: np.array(v) for k, v in arrays.items() if not k.startswith("state_")}
    leaves = [np.array(arrays[k]) for k in sorted(k for k in arrays if k.startswith("state_"))]
    if leaves:
        progress["state"] = jax.tree.unflatten(jax.tree.structure(state_like), leaves)
    return progress
