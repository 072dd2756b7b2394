"""An independent, deliberately plain PyTorch twin of the 3DGS compositing, for parity tests on the CPU.

Written from the 3DGS equations (Kerbl et al. 2023, Eq. 2-3) and gsplat 1.5.3's forward kernel semantics,
not from arthoi_jax: one Gaussian at a time, front to back, with a running transmittance per pixel.
gsplat's own compositing reference (`_rasterize_to_pixels`) needs CUDA and nerfacc, hence this file.
"""

from __future__ import annotations

import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci


def composite_reference(means2d, conics, opacities, colors, depths, radii, width, height, background, max_alpha):
    """Returns (rgb [H, W, C], alpha [H, W], depth [H, W] = sum w_i z_i) for Gaussians with radii > 0.

    means2d [N, 2], conics [N, 3], opacities [N], colors [N, C], depths [N], radii [N, 2], background [C].
    """
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=means2d.dtype) + 0.5, torch.arange(width, dtype=means2d.dtype) + 0.5, indexing="ij"
    )
    px, py = xs.reshape(-1), ys.reshape(-1)
    T = torch.ones_like(px)
    done = torch.zeros_like(px, dtype=torch.bool)
    rgb = torch.zeros(px.shape + (colors.shape[1],), dtype=colors.dtype)
    depth = torch.zeros_like(px)
    visible = (radii > 0).all(dim=-1)
    order = sorted(torch.nonzero(visible).flatten().tolist(), key=lambda i: (float(depths[i].detach()), i))
    for i in order:
        dx, dy = means2d[i, 0] - px, means2d[i, 1] - py
        sigma = 0.5 * (conics[i, 0] * dx * dx + conics[i, 2] * dy * dy) + conics[i, 1] * dx * dy
        alpha = torch.clamp_max(opacities[i] * torch.exp(-sigma), max_alpha)
        use = (sigma >= 0) & (alpha >= 1.0 / 255.0) & ~done
        next_T = T * (1 - alpha)
        stop = use & (next_T <= 1e-4)
        done = done | stop
        use = use & ~stop
        w = torch.where(use, alpha * T, torch.zeros_like(T))
        rgb = rgb + w[:, None] * colors[i]
        depth = depth + w * depths[i]
        T = torch.where(use, next_T, T)
    rgb = rgb + T[:, None] * background
    return rgb.reshape(height, width, -1), (1 - T).reshape(height, width), depth.reshape(height, width)


def render_reference(means, quats, log_scales, opacity_logits, colors, viewmat, K, width, height, background,
                     eps2d=0.3, near=0.01, far=1e10, max_alpha=0.99):
    """Full torch render: gsplat's projection (`_fully_fused_projection`) + `composite_reference`.

    Returns (rgb, alpha, depth, means2d [N, 2], radii [N, 2]).
    """
    covars, _ = _quat_scale_to_covar_preci(quats, torch.exp(log_scales), compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        means, covars, viewmat[None], K[None], width, height, eps2d=eps2d, near_plane=near, far_plane=far
    )
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    rgb, alpha, depth = composite_reference(
        means2d, conics, torch.sigmoid(opacity_logits), colors, depths, radii, width, height, background, max_alpha
    )
    return rgb, alpha, depth, means2d, radii
