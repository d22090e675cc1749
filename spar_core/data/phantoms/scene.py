"""A limb as signed-distance structures, and its rendering into a tissue-class map and a label map.

An anatomy module (:mod:`.ankle`, :mod:`.shoulder`) describes one subject as a :class:`Scene`: bones and soft
tissue parts, written at adult size in an anatomical frame (mm; x lateral for a right limb, y anterior,
z superior). :func:`render` places it in the exam's field of view (growth scale, pose), evaluates every
structure on the coarse grid inside its own bounding box only, cuts the joints, and classifies the fine grid
into :class:`Tissue` classes — the input of the MR simulation — and bone labels at the slice centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Callable

import numpy as np

from spar_core.data.phantoms.grid import Grid, Window, intersect, relative, upsample_to_fine
from spar_core.data.phantoms.shapes import Points, SmoothNoise, carve, smooth_union

SDF = Callable[[Points], np.ndarray]
Box = tuple[tuple[float, float, float], tuple[float, float, float]]
FAR = np.float32(1e3)  # value of a field outside the window it was evaluated in (mm)
MARGIN = 8.0  # mm around every bounding box, so thresholds up to a few mm are exact


class Tissue(IntEnum):
    """Tissue classes of the MR model (uint8 values of :attr:`Exam.tissue`)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    TENDON = 3  # tendons, ligaments, fascia: very dark
    CORTEX = 4  # cortical bone, subchondral plate, zone of provisional calcification: very dark
    MARROW = 5  # diaphyseal / metaphyseal marrow: red (darker) in young children, fatty later
    EPIPHYSIS = 6  # epiphyses, apophyses and tarsal bones: fatty marrow early
    PHYSIS = 7  # growth-plate cartilage: part of the bone label, not of its appearance
    CARTILAGE = 8  # articular cartilage
    FLUID = 9  # joint fluid
    LUNG = 10

    @classmethod
    def bone_classes(cls) -> tuple["Tissue", ...]:
        return cls.CORTEX, cls.MARROW, cls.EPIPHYSIS, cls.PHYSIS


@dataclass
class Bone:
    """One bone. ``label`` 0 means present in the image but not segmented (fibula, navicular, clavicle...).

    ``sdf`` and ``physis`` take adult-size anatomical coordinates and return adult mm; ``physis`` is a signed
    distance to the growth plate's mid-surface, positive on the metaphyseal side. Widths are exam mm.
    ``carve`` lists (earlier bone, joint gap in mm): this bone is cut by that bone's surface grown by the gap.
    """

    name: str
    label: int
    sdf: SDF
    bbox: Box
    carve: tuple[tuple[str, float], ...] = ()
    noise: SmoothNoise | None = None
    cortex: float = 1.5
    physis: SDF | None = None
    physis_width: float = 0.0
    marrow: Tissue = Tissue.MARROW  # class on the metaphyseal side, or everywhere without a physis
    epiphysis: Tissue = Tissue.EPIPHYSIS
    bridge: tuple[SDF, str] | None = None  # added after carving, fused to that bone (a coalition)
    pieces: tuple[tuple[SDF, Box, float], ...] = ()  # (sdf, own bbox, fillet mm): large thin parts, cheaply


@dataclass
class Part:
    """A soft-tissue structure: ``kind`` 'body' (inside the skin), 'muscle', 'tendon' or 'lung'."""

    kind: str
    sdf: SDF
    bbox: Box


@dataclass
class Joint:
    """Articular cartilage (``cartilage`` mm on each surface) and a fluid recess where two bones meet."""

    a: str
    b: str
    cartilage: float
    fluid: float = 2.0


@dataclass
class Scene:
    """One subject's limb. ``scale`` is the growth factor, ``pose`` rotates the anatomical frame into world."""

    bones: list[Bone]
    parts: list[Part]
    joints: list[Joint]
    scale: float
    pose: np.ndarray
    fat_thickness: float = 4.0
    body_noise: SmoothNoise | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Rendered:
    tissue: np.ndarray  # (nx, ny, nz·m) uint8 Tissue classes on the fine grid
    label: np.ndarray  # (nx, ny, nz) uint8 bone labels at the slice centres


def _world_box(scene: Scene, bbox) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.asarray(bbox[0], float), np.asarray(bbox[1], float)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    world = corners @ (scene.scale * scene.pose).T
    return world.min(0) - MARGIN, world.max(0) + MARGIN


class _Evaluator:
    """Evaluates scene structures on windows of the coarse grid."""

    def __init__(self, scene: Scene, grid: Grid):
        self.scene, self.grid = scene, grid
        self.axes = grid.coarse_axes()
        # world → adult anatomical coordinates: p_adult = Rᵀ p_world / scale
        self.inverse = (scene.pose.T / scene.scale).astype(np.float32)

    def window(self, bbox) -> Window | None:
        return self.grid.window(*_world_box(self.scene, bbox))

    def world(self, win: Window) -> Points:
        x, y, z = (a[w] for a, w in zip(self.axes, win))
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def anatomical(self, win: Window) -> Points:
        X, Y, Z = self.world(win)
        r = self.inverse
        return tuple(r[i, 0] * X + r[i, 1] * Y + r[i, 2] * Z for i in range(3))  # type: ignore[return-value]

    def evaluate(self, sdf: SDF, win: Window, noise: SmoothNoise | None = None) -> np.ndarray:
        """A structure's signed distance in exam mm on ``win``, with its shape noise."""
        d = np.float32(self.scene.scale) * sdf(self.anatomical(win))
        if noise is not None:
            d = d + noise(self.world(win))
        shape = tuple(s.stop - s.start for s in win)
        if d.shape != shape:
            d = np.broadcast_to(d, shape).copy()
        return d.astype(np.float32, copy=False)


def crop(values: np.ndarray, win: Window, target: Window) -> np.ndarray:
    """A field known on ``win``, read on ``target`` (FAR outside ``win``)."""
    out = np.full(tuple(s.stop - s.start for s in target), FAR, dtype=np.float32)
    common = intersect(win, target)
    if common is not None:
        out[relative(common, target)] = values[relative(common, win)]
    return out


def render(scene: Scene, grid: Grid) -> Rendered:
    """Tissue classes on the fine grid and bone labels at slice centres for ``scene`` in ``grid``."""
    ev = _Evaluator(scene, grid)
    nx, ny, nz = grid.shape
    m = grid.subslices
    tissue = np.zeros((nx, ny, nz * m), dtype=np.uint8)
    label = np.zeros((nx, ny, nz), dtype=np.uint8)

    # Bones, coarse: each cut by the earlier bones it articulates with.
    coarse: dict[str, tuple[Window, np.ndarray]] = {}
    for bone in scene.bones:
        win, d = _evaluate_bone(ev, bone)
        if win is None:
            continue
        for other, gap in bone.carve:
            if other in coarse:
                d = carve(d, crop(coarse[other][1], coarse[other][0], win), gap)
        if bone.bridge is not None and bone.bridge[1] in coarse:
            other = crop(coarse[bone.bridge[1]][1], coarse[bone.bridge[1]][0], win)
            d = np.minimum(d, carve(ev.evaluate(bone.bridge[0], win), other, 0.0))
        coarse[bone.name] = (win, d)

    _render_soft(scene, grid, ev, coarse, tissue)

    # Bones, fine: cortex, marrow, physis; labels at the centre sub-slice of each slice.
    fine: dict[str, tuple[Window, np.ndarray]] = {}
    for bone in scene.bones:
        if bone.name not in coarse:
            continue
        win, d = coarse[bone.name]
        fwin = grid.fine_window(win)
        df = upsample_to_fine(d, grid, win)
        fine[bone.name] = (fwin, df)
        inside = df < 0
        cls = np.full(df.shape, bone.marrow, dtype=np.uint8)
        if bone.physis is not None:
            phi = upsample_to_fine(ev.evaluate(bone.physis, win), grid, win)
            cls[phi < 0] = bone.epiphysis
            cls[df > -bone.cortex] = Tissue.CORTEX
            half = bone.physis_width / 2
            if half > 0:
                cls[(phi >= half) & (phi < half + 0.6)] = Tissue.CORTEX  # zone of provisional calcification
                cls[np.abs(phi) < half] = Tissue.PHYSIS
            else:
                cls[np.abs(phi) < 0.35] = Tissue.CORTEX  # physeal scar of a closed plate
        else:
            cls[df > -bone.cortex] = Tissue.CORTEX
        view = tissue[fwin]
        view[inside] = cls[inside]
        if bone.label:
            lab = label[fwin[0], fwin[1], fwin[2].start // m : fwin[2].stop // m]
            lab[inside[..., m // 2 :: m]] = bone.label

    for joint in scene.joints:
        if joint.a in fine and joint.b in fine:
            _render_joint(joint, fine[joint.a], fine[joint.b], tissue)
    return Rendered(tissue=tissue, label=label)


def _evaluate_bone(ev: _Evaluator, bone: Bone) -> tuple[Window | None, np.ndarray | None]:
    """A bone's coarse field on the window holding its main shape and its pieces, each evaluated only in
    its own box (FAR elsewhere)."""
    boxes = [(bone.sdf, bone.bbox, 0.0), *bone.pieces]
    wins = [ev.window(box) for _, box, _ in boxes]
    present = [w for w in wins if w is not None]
    if not present:
        return None, None
    win: Window = tuple(slice(min(w[i].start for w in present), max(w[i].stop for w in present))
                        for i in range(3))  # type: ignore[assignment]
    d = np.full(tuple(s.stop - s.start for s in win), FAR, dtype=np.float32)
    for (sdf, _, k), w in zip(boxes, wins):
        if w is None:
            continue
        view = d[relative(w, win)]
        value = ev.evaluate(sdf, w, bone.noise)
        view[...] = smooth_union(view, value, k) if k > 0 else np.minimum(view, value)
    return win, d


def _render_soft(scene: Scene, grid: Grid, ev: _Evaluator, bones: dict, tissue: np.ndarray) -> None:
    """Air, fat, muscle, tendon and lung on the fine grid (bones are drawn over them afterwards)."""
    full: Window = tuple(slice(0, n) for n in grid.coarse_shape)  # type: ignore[assignment]
    fields: dict[str, np.ndarray] = {}
    for part in scene.parts:
        win = ev.window(part.bbox)
        if win is None:
            continue
        f = fields.setdefault(part.kind, np.full(grid.coarse_shape, FAR, dtype=np.float32))
        np.minimum(f[win], ev.evaluate(part.sdf, win), out=f[win])
    body = fields.get("body", np.full(grid.coarse_shape, FAR, dtype=np.float32))
    if scene.body_noise is not None:
        body += scene.body_noise(ev.world(full))
    for win, d in bones.values():  # skin always covers the bones
        np.minimum(body[win], d - np.float32(scene.fat_thickness + 3.0), out=body[win])

    def fine(f: np.ndarray) -> np.ndarray:
        return upsample_to_fine(f, grid, full)

    body_f = fine(body)
    tissue[body_f < 0] = Tissue.FAT
    if "muscle" in fields:
        muscle = np.maximum(fields["muscle"], body + np.float32(scene.fat_thickness))
        tissue[fine(muscle) < 0] = Tissue.MUSCLE
    if "lung" in fields:
        tissue[fine(np.maximum(fields["lung"], body + 10)) < 0] = Tissue.LUNG
    if "tendon" in fields:
        tissue[fine(np.maximum(fields["tendon"], body)) < 0] = Tissue.TENDON


def _render_joint(joint: Joint, a: tuple[Window, np.ndarray], b: tuple[Window, np.ndarray], tissue: np.ndarray) -> None:
    common = intersect(a[0], b[0])
    if common is None:
        return
    da, db = a[1][relative(common, a[0])], b[1][relative(common, b[0])]
    view = tissue[common]
    soft = (da > 0) & (db > 0) & (view < Tissue.CORTEX)
    near = np.minimum(da, db)
    total = da + db
    fluid = soft & (total < 2 * joint.cartilage + 2 * joint.fluid) & (near < joint.cartilage + joint.fluid)
    cartilage = soft & (total < 2 * joint.cartilage + 1.5) & (near < joint.cartilage)
    view[fluid] = Tissue.FLUID
    view[cartilage] = Tissue.CARTILAGE
