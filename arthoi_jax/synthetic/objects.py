"""The procedural articulated objects and the room they stand in, built from boxes and rectangles.

Room frame: metres, z up, the floor is z = 0, the wall behind the object is the plane y = 0 and the room lies
at y > 0. The camera stands in the room looking towards -y, so room +x appears on the image's left. Each
builder returns the object at joint value 0, its joints in this frame, and a 3/4 viewpoint that shows the
moving parts well while they open.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from arthoi_jax.synthetic.mesh import Mesh, box, merge, rect
from arthoi_jax.synthetic.textures import Material


@dataclasses.dataclass(frozen=True)
class MovingPartSpec:
    """One moving part: its mesh at joint value 0 and its joint (room frame).

    The joint value follows `open_and_hold` from 0 to `peak_scale` x the configured peak, over the fraction
    [start, end] of the clip. Object meshes are unions of boxes (8 vertices, 12 faces each) and a moving part's
    mesh ends with its handle's bar, pulled along room +y at rest: `synthetic.hoi` relies on both to place a
    hand on the handle and to test the body against the object's solids.
    """

    name: str
    mesh: Mesh
    joint_type: str  # "revolute" | "prismatic"
    axis: tuple[float, float, float]  # unit; opening is a positive value about/along it
    pivot: tuple[float, float, float]  # a point on the axis, metres
    start: float = 0.0
    end: float = 0.75
    peak_scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """An articulated object: a static body and its moving parts (face materials index the `Palette`)."""

    static: Mesh
    moving: tuple[MovingPartSpec, ...]
    target: tuple[float, float, float]  # the point the camera looks at
    camera_distance_m: float  # horizontal distance from the target
    camera_height_m: float
    camera_yaw_deg: float  # about the vertical, from the wall normal; positive = camera on the room's +x side
    prompt: str
    doorway: tuple[float, float, float] | None = None  # (x0, x1, z1) of an opening in the wall, for a door


class Palette:
    """Collects the materials of a scene, each colour jittered and each pattern seeded from one generator."""

    def __init__(self, rng: np.random.Generator, low_texture: bool):
        self._rng, self._low = rng, low_texture
        self.materials: list[Material] = []

    def add(self, kind: str, color_a, color_b, scale_m: float, grain_axis: int = 2, *, keep_texture=False) -> int:
        """Registers a material; returns its index. `keep_texture` exempts it from the low-texture variant."""
        gain = (1.0 + 0.08 * self._rng.uniform(-1, 1)) * (1.0 + 0.03 * self._rng.uniform(-1, 1, 3))
        a = tuple(float(c) for c in np.clip(np.asarray(color_a) * gain, 0, 1))
        b = tuple(float(c) for c in np.clip(np.asarray(color_b) * gain, 0, 1))
        m = Material(kind, a, b, scale_m, int(self._rng.integers(2**31)), grain_axis)
        if self._low and not keep_texture:
            m = m.low_texture()
        self.materials.append(m)
        return len(self.materials) - 1


def open_box(lo, hi, t: float, open_side: str, material: int) -> Mesh:
    """A box of panels `t` thick filling [lo, hi], without its 'front' (y = hi) or 'top' (z = hi) panel."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    if open_side == "front":
        panels = [
            ((x0, y0, z0), (x1, y1, z0 + t)),  # bottom
            ((x0, y0, z1 - t), (x1, y1, z1)),  # top
            ((x0, y0, z0 + t), (x0 + t, y1, z1 - t)),  # left
            ((x1 - t, y0, z0 + t), (x1, y1, z1 - t)),  # right
            ((x0 + t, y0, z0 + t), (x1 - t, y0 + t, z1 - t)),  # back
        ]
    elif open_side == "top":
        panels = [
            ((x0, y0, z0), (x1, y1, z0 + t)),  # bottom
            ((x0, y0, z0 + t), (x1, y0 + t, z1)),  # back
            ((x0, y1 - t, z0 + t), (x1, y1, z1)),  # front
            ((x0, y0 + t, z0 + t), (x0 + t, y1 - t, z1)),  # left
            ((x1 - t, y0 + t, z0 + t), (x1, y1 - t, z1)),  # right
        ]
    else:
        raise ValueError(f"open_side {open_side!r} is not 'front' or 'top'")
    return merge(box(a, b, material) for a, b in panels)


def bar_handle(center, length: float, along: int, out: int, material: int, standoff: float = 0.03) -> Mesh:
    """A bar handle on a face whose outward normal is +axis `out`, its bar `length` long along axis `along`,
    held by two posts `standoff` off the face; `center` is the point on the face below the bar's middle."""
    c = np.asarray(center, np.float64)
    e_along, e_out = np.eye(3)[along], np.eye(3)[out]
    e_side = np.eye(3)[3 - along - out]
    meshes = []
    for s in (-0.38, 0.38):  # posts
        p = c + s * length * e_along
        lo = p - 0.008 * e_along - 0.008 * e_side
        meshes.append(box(lo, lo + 0.016 * e_along + 0.016 * e_side + standoff * e_out, material))
    lo = c - 0.5 * length * e_along - 0.012 * e_side + standoff * e_out
    meshes.append(box(lo, lo + length * e_along + 0.024 * e_side + 0.016 * e_out, material))
    return merge(meshes)


def _handle_material(pal: Palette) -> int:
    return pal.add("noise", (0.80, 0.80, 0.78), (0.38, 0.38, 0.40), 0.02)


def door(pal: Palette) -> ObjectSpec:
    """A 0.84 x 2.01 m door in a frame set into the wall, hinged on its -x edge, swinging away into the next
    room: the leaf turns to face the camera and the doorway opens up beside it."""
    frame = pal.add("wood", (0.93, 0.90, 0.82), (0.72, 0.66, 0.55), 0.15)
    panel = pal.add("wood", (0.62, 0.40, 0.22), (0.30, 0.17, 0.08), 0.25)
    metal = _handle_material(pal)
    static = merge([
        box((-0.50, -0.12, 0.0), (-0.43, 0.03, 2.10), frame),
        box((0.43, -0.12, 0.0), (0.50, 0.03, 2.10), frame),
        box((-0.43, -0.12, 2.03), (0.43, 0.03, 2.10), frame),
    ])
    leaf = merge([
        box((-0.42, -0.04, 0.01), (0.42, 0.0, 2.02), panel),
        box((0.305, 0.0, 0.95), (0.355, 0.012, 1.08), metal),  # escutcheon plate
        bar_handle((0.26, 0.012, 1.035), 0.16, along=0, out=1, material=metal, standoff=0.045),
    ])
    moving = MovingPartSpec("door", leaf, "revolute", (0.0, 0.0, -1.0), (-0.42, -0.04, 0.0))
    return ObjectSpec(static, (moving,), target=(0.0, -0.2, 1.05), camera_distance_m=3.2,
                      camera_height_m=1.2, camera_yaw_deg=15.0, prompt="a person opens the door",
                      doorway=(-0.50, 0.50, 2.10))


def drawer(pal: Palette) -> ObjectSpec:
    """A 0.6 x 0.5 x 0.8 m cabinet whose top drawer slides out along +y."""
    body_m = pal.add("wood", (0.85, 0.78, 0.62), (0.58, 0.46, 0.30), 0.18)
    front_m = pal.add("wood", (0.55, 0.32, 0.18), (0.30, 0.15, 0.07), 0.20, grain_axis=0)
    tray_m = pal.add("noise", (0.85, 0.82, 0.74), (0.45, 0.40, 0.33), 0.06)
    metal = _handle_material(pal)
    static = merge([
        open_box((-0.30, 0.0, 0.0), (0.30, 0.50, 0.80), 0.02, "front", body_m),
        box((-0.28, 0.02, 0.50), (0.28, 0.50, 0.52), body_m),  # divider under the drawer
        box((-0.28, 0.48, 0.02), (0.28, 0.50, 0.50), front_m),  # fixed lower front
    ])
    tray = merge([
        box((-0.275, 0.50, 0.525), (0.275, 0.52, 0.775), front_m),
        open_box((-0.26, 0.04, 0.53), (0.26, 0.50, 0.72), 0.012, "top", tray_m),
        bar_handle((0.0, 0.52, 0.65), 0.22, along=0, out=1, material=metal),
    ])
    moving = MovingPartSpec("drawer", tray, "prismatic", (0.0, 1.0, 0.0), (0.0, 0.52, 0.65))
    return ObjectSpec(static, (moving,), target=(0.0, 0.30, 0.50), camera_distance_m=2.0,
                      camera_height_m=1.5, camera_yaw_deg=35.0, prompt="a person pulls the drawer open")


def fridge(pal: Palette) -> ObjectSpec:
    """A 0.7 x 0.65 x 1.75 m fridge with shelves, its door hinged on the +x edge, seen from the other side
    so that the opening door shows the inside."""
    body_m = pal.add("noise", (0.96, 0.96, 0.94), (0.70, 0.74, 0.78), 0.04)
    door_m = pal.add("noise", (0.94, 0.95, 0.97), (0.62, 0.66, 0.72), 0.04)
    shelf_m = pal.add("noise", (0.80, 0.88, 0.92), (0.50, 0.58, 0.62), 0.03)
    metal = _handle_material(pal)
    static = merge([
        open_box((-0.35, 0.0, 0.0), (0.35, 0.65, 1.75), 0.04, "front", body_m),
        box((-0.31, 0.04, 0.60), (0.31, 0.60, 0.615), shelf_m),
        box((-0.31, 0.04, 1.10), (0.31, 0.60, 1.115), shelf_m),
    ])
    leaf = merge([
        box((-0.35, 0.65, 0.02), (0.35, 0.72, 1.73), door_m),
        bar_handle((-0.29, 0.72, 1.15), 0.45, along=2, out=1, material=metal),
    ])
    moving = MovingPartSpec("fridge_door", leaf, "revolute", (0.0, 0.0, -1.0), (0.35, 0.72, 0.0))
    return ObjectSpec(static, (moving,), target=(0.0, 0.40, 0.90), camera_distance_m=3.0,
                      camera_height_m=1.4, camera_yaw_deg=-15.0, prompt="a person opens the fridge door")


def lid(pal: Palette) -> ObjectSpec:
    """A 0.8 x 0.5 x 0.45 m chest whose lid turns up about its back edge (a horizontal axis)."""
    body_m = pal.add("wood", (0.60, 0.42, 0.25), (0.32, 0.20, 0.10), 0.16, grain_axis=0)
    lid_m = pal.add("wood", (0.72, 0.30, 0.18), (0.38, 0.13, 0.06), 0.18, grain_axis=0)
    metal = _handle_material(pal)
    static = open_box((-0.40, 0.15, 0.0), (0.40, 0.65, 0.45), 0.03, "top", body_m)
    top = merge([
        box((-0.41, 0.14, 0.45), (0.41, 0.66, 0.49), lid_m),
        bar_handle((0.0, 0.66, 0.47), 0.18, along=0, out=1, material=metal, standoff=0.02),
    ])
    moving = MovingPartSpec("lid", top, "revolute", (1.0, 0.0, 0.0), (0.0, 0.14, 0.45))
    return ObjectSpec(static, (moving,), target=(0.0, 0.40, 0.35), camera_distance_m=2.2,
                      camera_height_m=1.6, camera_yaw_deg=25.0, prompt="a person opens the lid of the chest")


def cabinet2(pal: Palette) -> ObjectSpec:
    """A 0.9 x 0.45 x 1.0 m cabinet with two doors hinged on its outer edges; the right one opens later."""
    body_m = pal.add("wood", (0.80, 0.70, 0.52), (0.50, 0.38, 0.22), 0.16)
    left_m = pal.add("wood", (0.45, 0.55, 0.40), (0.20, 0.28, 0.17), 0.18)
    right_m = pal.add("wood", (0.40, 0.48, 0.62), (0.16, 0.22, 0.33), 0.18)
    metal = _handle_material(pal)
    static = merge([
        open_box((-0.45, 0.0, 0.0), (0.45, 0.45, 1.0), 0.02, "front", body_m),
        box((-0.43, 0.02, 0.49), (0.43, 0.43, 0.51), body_m),  # shelf
    ])
    left = merge([
        box((-0.445, 0.45, 0.025), (-0.003, 0.47, 0.975), left_m),
        bar_handle((-0.06, 0.47, 0.62), 0.18, along=2, out=1, material=metal, standoff=0.025),
    ])
    right = merge([
        box((0.003, 0.45, 0.025), (0.445, 0.47, 0.975), right_m),
        bar_handle((0.06, 0.47, 0.62), 0.18, along=2, out=1, material=metal, standoff=0.025),
    ])
    moving = (
        MovingPartSpec("left_door", left, "revolute", (0.0, 0.0, 1.0), (-0.445, 0.47, 0.0), 0.0, 0.6, 1.0),
        MovingPartSpec("right_door", right, "revolute", (0.0, 0.0, -1.0), (0.445, 0.47, 0.0), 0.25, 0.85, 0.85),
    )
    return ObjectSpec(static, moving, target=(0.0, 0.30, 0.50), camera_distance_m=2.5,
                      camera_height_m=1.45, camera_yaw_deg=10.0, prompt="a person opens both doors of the cabinet")


BUILDERS = {"door": door, "drawer": drawer, "fridge": fridge, "lid": lid, "cabinet2": cabinet2}


def room(pal: Palette, doorway: tuple[float, float, float] | None) -> Mesh:
    """Floor (wooden boards), wall with a skirting board, and, behind a doorway, the next room.

    The floor and wall are large planes: they fill the view from any camera placement the config allows.
    """
    floor_m = pal.add("planks", (0.70, 0.52, 0.34), (0.36, 0.24, 0.14), 0.16, keep_texture=True)
    wall_m = pal.add("stripes", (0.92, 0.88, 0.74), (0.68, 0.72, 0.58), 0.12, keep_texture=True)
    skirting_m = pal.add("noise", (0.95, 0.95, 0.92), (0.75, 0.75, 0.72), 0.05, keep_texture=True)
    far_m = pal.add("noise", (0.72, 0.80, 0.86), (0.42, 0.50, 0.56), 0.10, keep_texture=True)
    X, H, Y0, Y1 = 8.0, 3.0, -3.0, 8.0
    meshes = [rect((-X, Y0, 0.0), (2 * X, 0, 0), (0, Y1 - Y0, 0), floor_m)]
    if doorway is None:
        meshes.append(rect((-X, 0, 0), (2 * X, 0, 0), (0, 0, H), wall_m))
        meshes.append(box((-X, 0.0, 0.0), (X, 0.015, 0.08), skirting_m))
    else:
        x0, x1, z1 = doorway
        meshes += [
            rect((-X, 0, 0), (x0 + X, 0, 0), (0, 0, H), wall_m),
            rect((x1, 0, 0), (X - x1, 0, 0), (0, 0, H), wall_m),
            rect((x0, 0, z1), (x1 - x0, 0, 0), (0, 0, H - z1), wall_m),
            box((-X, 0.0, 0.0), (x0, 0.015, 0.08), skirting_m),
            box((x1, 0.0, 0.0), (X, 0.015, 0.08), skirting_m),
            # The next room: a back wall and two side walls seen through the doorway.
            rect((-2.0, -2.5, 0), (4.0, 0, 0), (0, 0, H), far_m),
            rect((-2.0, -2.5, 0), (0, 2.5, 0), (0, 0, H), far_m),
            rect((2.0, -2.5, 0), (0, 2.5, 0), (0, 0, H), far_m),
        ]
    return merge(meshes)
