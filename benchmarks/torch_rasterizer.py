"""A vectorised pure-PyTorch 3DGS rasterizer for the CPU benchmark (reference speed at 10k-100k Gaussians).

Projection: gsplat 1.5.3's pure-torch `_fully_fused_projection` (as in tests/torch_compositing_reference.py).
Compositing: written from the 3DGS equations (Kerbl et al. 2023, Eq. 2-3), vectorised per 16x16 tile over
the depth-sorted Gaussians that can reach the tile:
  sigma = 0.5 (a dx^2 + c dy^2) + b dx dy; alpha = min(max_alpha, opacity exp(-sigma)), skipped when sigma < 0
  or alpha < 1/255; front to back by depth, stopping before the first Gaussian that takes T to <= 1e-4.
A Gaussian reaches a tile when the tile's pixel-centre box meets the Gaussian's alpha >= 1/255 ellipse box
(half-widths sqrt(2 ln(255 opacity) cov_xx), ... plus a margin), so culling drops nothing that is drawn.
Tiles are sorted by their Gaussian count and composited `tiles_per_chunk` at a time as padded
[tiles, pixels, Gaussians] blocks, each under `torch.utils.checkpoint` so the backward keeps only the chunk
inputs and recomputes the block: forward+backward memory is that of one chunk.
"""

from __future__ import annotations

import math

import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci
from torch.utils.checkpoint import checkpoint

ALPHA_THRESHOLD = 1.0 / 255.0
LOG_T_STOP = math.log(1e-4)


def _composite_chunk(pix, ids, means2d, conics, opacities, colors, depths, max_alpha):
    """pix [B, P, 2], ids [B, M] (index N = padding, opacity 0) -> rgb [B, P, C], T [B, P], depth [B, P]."""
    pad = lambda x: torch.cat([x, torch.zeros_like(x[:1])], 0)
    m, con, opa, col, dep = (pad(x)[ids] for x in (means2d, conics, opacities, colors, depths))  # [B, M, ...]
    dx = m[:, None, :, 0] - pix[:, :, None, 0]  # [B, P, M]
    dy = m[:, None, :, 1] - pix[:, :, None, 1]
    sigma = 0.5 * (con[:, None, :, 0] * dx * dx + con[:, None, :, 2] * dy * dy) + con[:, None, :, 1] * dx * dy
    alpha = torch.clamp_max(opa[:, None, :] * torch.exp(-sigma), max_alpha)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
    log_1ma = torch.log1p(-alpha)
    log_t_incl = torch.cumsum(log_1ma, dim=-1)
    alive = log_t_incl > LOG_T_STOP  # transmittance only decreases: a prefix of each pixel's list
    weights = torch.where(alive, alpha * torch.exp(log_t_incl - log_1ma), torch.zeros_like(alpha))
    trans = torch.exp(torch.where(alive, log_1ma, torch.zeros_like(log_1ma)).sum(-1))
    return weights @ col, trans, (weights @ dep[:, :, None])[..., 0]


def composite_tiles(means2d, conics, opacities, colors, depths, width, height, background, max_alpha=0.99,
                    tile=16, tiles_per_chunk=16, chunk_fraction=1.0):
    """Composites depth-sorted, visible Gaussians; returns (rgb [H, W, C], alpha [H, W], depth [H, W], info).

    chunk_fraction < 1 composites only that evenly spaced fraction of the chunks (for timing extrapolation;
    the image is then incomplete). info: dict with pairs, chunks, chunks_run.
    """
    n, channels = means2d.shape[0], colors.shape[1]
    tx, ty = -(-width // tile), -(-height // tile)
    with torch.no_grad():
        a, b, c = conics[:, 0], conics[:, 1], conics[:, 2]
        det = (a * c - b * b).clamp_min(1e-20)
        level = torch.log(255.0 * opacities).clamp_min(0.0)  # sigma <= level where alpha >= 1/255
        hx = torch.sqrt(2.0 * level * c / det) + 1.0
        hy = torch.sqrt(2.0 * level * a / det) + 1.0
        draws = opacities >= ALPHA_THRESHOLD
        # Tile t covers pixel centres [t*tile + 0.5, (t+1)*tile - 0.5].
        x0 = torch.floor((means2d[:, 0] - hx - 0.5) / tile).clamp(0, tx - 1).long()
        x1 = torch.floor((means2d[:, 0] + hx - 0.5) / tile).clamp(-1, tx - 1).long()
        y0 = torch.floor((means2d[:, 1] - hy - 0.5) / tile).clamp(0, ty - 1).long()
        y1 = torch.floor((means2d[:, 1] + hy - 0.5) / tile).clamp(-1, ty - 1).long()
        nx, ny = (x1 - x0 + 1).clamp_min(0), (y1 - y0 + 1).clamp_min(0)
        count = torch.where(draws, nx * ny, torch.zeros_like(nx))
        g = torch.repeat_interleave(torch.arange(n), count)  # pair -> Gaussian (depth rank)
        k = torch.arange(g.numel()) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        tile_id = (y0[g] + k // nx[g]) * tx + (x0[g] + k % nx[g])
        key = tile_id * (n + 1) + g  # by tile, then front to back
        key, _ = torch.sort(key)
        tile_id, g = key // (n + 1), key % (n + 1)
        per_tile = torch.bincount(tile_id, minlength=tx * ty)
        start = torch.cumsum(per_tile, 0) - per_tile
        tile_order = torch.argsort(per_tile, stable=True)  # similar counts together: little padding
        ys, xs = torch.meshgrid(torch.arange(tile, dtype=means2d.dtype) + 0.5,
                                torch.arange(tile, dtype=means2d.dtype) + 0.5, indexing="ij")
        local = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)  # [P, 2]

    chunks = [tile_order[i:i + tiles_per_chunk] for i in range(0, tx * ty, tiles_per_chunk)]
    run = range(len(chunks))
    if chunk_fraction < 1.0:
        step = max(1, round(1.0 / chunk_fraction))
        run = range(0, len(chunks), step)
    g_pad = torch.cat([g, torch.full((1,), n, dtype=g.dtype)])
    outs, done = [], []
    for ci in run:
        t = chunks[ci]
        m = max(1, int(per_tile[t].max()))
        slot = torch.arange(m)
        idx = (start[t, None] + slot[None]).clamp_max(g.numel())
        ids = torch.where(slot[None] < per_tile[t, None], g_pad[idx], torch.full_like(idx, n))
        origin = torch.stack([(t % tx) * tile, (t // tx) * tile], -1).to(means2d.dtype)
        pix = origin[:, None, :] + local[None]
        args = (pix, ids, means2d, conics, opacities, colors, depths, max_alpha)
        if torch.is_grad_enabled():
            outs.append(checkpoint(_composite_chunk, *args, use_reentrant=False))
        else:
            outs.append(_composite_chunk(*args))
        done.append(t)
    rgb_t = torch.cat([o[0] for o in outs]) if outs else torch.zeros(0, tile * tile, channels)
    trans_t = torch.cat([o[1] for o in outs]) if outs else torch.zeros(0, tile * tile)
    depth_t = torch.cat([o[2] for o in outs]) if outs else torch.zeros(0, tile * tile)
    done = torch.cat(done) if done else torch.zeros(0, dtype=torch.long)
    # Scatter tiles back (tiles not run stay empty: rgb 0, T 1, depth 0).
    full_rgb = torch.zeros(tx * ty, tile * tile, channels, dtype=colors.dtype).index_copy(0, done, rgb_t)
    full_t = torch.ones(tx * ty, tile * tile, dtype=colors.dtype).index_copy(0, done, trans_t)
    full_d = torch.zeros(tx * ty, tile * tile, dtype=colors.dtype).index_copy(0, done, depth_t)

    def untile(x):
        x = x.reshape((ty, tx, tile, tile) + x.shape[2:]).transpose(1, 2)
        return x.reshape((ty * tile, tx * tile) + x.shape[4:])[:height, :width]

    trans = untile(full_t)
    rgb = untile(full_rgb) + trans[..., None] * background
    info = {"pairs": int(g.numel()), "chunks": len(chunks), "chunks_run": len(run)}
    return rgb, 1.0 - trans, untile(full_d), info


def render_vectorised(means, quats, log_scales, opacity_logits, colors, viewmat, K, width, height, background,
                      eps2d=0.3, near=0.01, far=1e10, max_alpha=0.99, tiles_per_chunk=16, chunk_fraction=1.0):
    """gsplat projection + `composite_tiles`; returns (rgb [H, W, C], alpha [H, W], depth [H, W], info)."""
    covars, _ = _quat_scale_to_covar_preci(quats, torch.exp(log_scales), compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        means, covars, viewmat[None], K[None], width, height, eps2d=eps2d, near_plane=near, far_plane=far
    )
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    visible = torch.nonzero((radii > 0).all(dim=-1)).flatten()
    # Front to back; ties by index (a stable sort of the visible ones, which are in index order).
    order = visible[torch.argsort(depths.detach()[visible], stable=True)]
    return composite_tiles(
        means2d[order], conics[order], torch.sigmoid(opacity_logits)[order], colors[order], depths[order],
        width, height, background, max_alpha, tiles_per_chunk=tiles_per_chunk, chunk_fraction=chunk_fraction,
    )
