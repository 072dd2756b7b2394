"""Stage II's result re-rendered: the human and object Gaussians at full resolution through the data's cameras
(the `rerender` video of io.stage2_outputs)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from arthoi_jax.body.human_gaussians import pose_gaussians
from arthoi_jax.config import RenderConfig
from arthoi_jax.render.rasterize import render
from arthoi_jax.render.types import Camera
from arthoi_jax.stage1 import move_gaussians
from arthoi_jax.stage2 import Stage2Data, Stage2Result


@partial(jax.jit, static_argnames=("render_cfg", "height", "width"))
def _render_full(template, model, verts, obj, poses, K, T_cam_world, render_cfg, height, width):
    cam = Camera(K=K, T_cam_world=T_cam_world, width=width, height=height)
    g_h = pose_gaussians(template, verts, model.faces)
    g_o = move_gaussians(obj, poses)
    g = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), g_h, g_o)
    valid = jnp.concatenate([jnp.ones(g_h.means.shape[0], bool), obj.valid])
    return render(g, cam, render_cfg, background=jnp.zeros(3), valid=valid).rgb


def render_sequence(data: Stage2Data, result: Stage2Result, K: np.ndarray, render_cfg: RenderConfig, height: int,
                    width: int) -> np.ndarray:
    """Human and object Gaussians re-rendered at full resolution through the data's cameras -> [T, H, W, 3] uint8."""
    out = [np.asarray(_render_full(data.template, data.model, jnp.asarray(v), data.obj, jnp.asarray(q, jnp.float32),
                                   jnp.asarray(K, jnp.float32), c, render_cfg, height, width))
           for v, q, c in zip(result.vertices, result.object_poses, data.T_cam_world)]
    return (np.clip(np.stack(out), 0, 1) * 255).round().astype(np.uint8)
