"""The scene axis laid out over devices (and hosts) with jax.sharding: a 1-D Mesh named "scenes" and
NamedSharding(mesh, P("scenes")) on every batched array; jit then runs the vmapped program SPMD, each device
optimizing its share of the scenes. A scene count that does not divide by the device count is padded with
inactive copies of the first scene (they take no step) and the padding is logged.

Several hosts (GPU nodes): set `batch.distributed: true` and start the same command on every host with the
coordinator's address, e.g. on 2 nodes with Slurm (jax.distributed.initialize reads the Slurm/Open MPI
environment by itself):

    srun --nodes=2 --ntasks-per-node=1 python run.py --config configs/batch/synthetic_suite.yaml \
         --set batch.distributed=true --out /shared/fs/suite

or without a cluster manager, on host i of N (same command, same shared --out folder):

    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i \
        python run.py --config configs/batch/synthetic_suite.yaml --set batch.distributed=true --out /shared/fs/suite

Every process prepares every scene's host data (deterministic) and contributes its devices' shards; results are
gathered to every process and written by process 0 only. Multi-host runs were not tested here (one CPU host).
"""

from __future__ import annotations

import logging
import math
import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from arthoi_jax.errors import ConfigError

log = logging.getLogger("arthoi_jax")
AXIS = "scenes"


def initialize_distributed() -> None:
    """jax.distributed.initialize() from the environment (Slurm, Open MPI or JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES, JAX_PROCESS_ID); a no-op once initialized."""
    if jax.distributed.is_initialized():
        return
    kwargs = {}
    if "JAX_COORDINATOR_ADDRESS" in os.environ:
        kwargs = dict(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                      num_processes=int(os.environ["JAX_NUM_PROCESSES"]), process_id=int(os.environ["JAX_PROCESS_ID"]))
    jax.distributed.initialize(**kwargs)
    log.info("distributed: process %d of %d, %d local / %d global devices", jax.process_index(),
             jax.process_count(), jax.local_device_count(), jax.device_count())


def scene_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices (0: all devices of all hosts)."""
    devices = jax.devices()
    if num_devices > len(devices):
        raise ConfigError(f"batch.devices: {num_devices} requested, JAX sees {len(devices)} "
                          f"({devices[0].platform}); use 0 for all")
    return Mesh(np.array(devices[: num_devices or len(devices)]), (AXIS,))


def padded_scene_count(num_scenes: int, mesh: Mesh) -> int:
    """num_scenes rounded up to a multiple of the mesh's device count (logged when padding is needed)."""
    d = mesh.devices.size
    padded = math.ceil(num_scenes / d) * d
    if padded != num_scenes:
        log.info("sharding: %d scenes padded to %d (a multiple of %d devices); the %d padding scenes take no step",
                 num_scenes, padded, d, padded - num_scenes)
    return padded


def shard(tree, mesh: Mesh):
    """Numpy pytree with a leading scene axis (a multiple of the device count) -> global jax.Arrays sharded
    along that axis (each process supplies the shards of its own devices)."""
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)


def to_host(tree):
    """Sharded pytree -> numpy on every process (an all-gather across hosts when there are several)."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)
