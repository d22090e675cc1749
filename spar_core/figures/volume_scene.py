"""A whole exam packed for spar's client-side volume viewer: image, label layers and panels in one byte string.

The browser receives the volumes once and then scrolls, windows, zooms and pans without asking the server
(``assets/volume_viewer.js`` beside this file reads this format; the app mounts it as a Streamlit component,
:func:`spar_core.figures.notebook_viewer.notebook_viewer` in a notebook). Volumes are turned to the closest RAS+ axes first, as
ITK-SNAP and NiiVue display them, so the three planes are the anatomical ones (sagittal, coronal, axial).

Format (little-endian): ``b"SPV1"``, a uint32 header length, the header as UTF-8 JSON, then the blobs, each a
zlib-compressed C-order array with the first voxel axis varying fastest (``order="F"`` bytes). The header
records, per blob, its offset (from the first byte after the header), byte length and dtype.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel
import numpy as np

from spar_core.errors import SparError
from spar_core.figures.slices import structure_colors

MAGIC = b"SPV1"
ASSETS = Path(__file__).resolve().parent / "assets"
VIEWER_JS, VIEWER_CSS = ASSETS / "volume_viewer.js", ASSETS / "volume_viewer.css"
PLANES = ("sagittal", "coronal", "axial")  # the plane that fixes RAS axis 0, 1, 2
IMAGE_LEVELS = 65535  # the image is sent as uint16 over its [min, max]
MAP_LEVELS = 255  # a float map (uncertainty) as uint8 over [0, its vmax]


@dataclass(frozen=True)
class Panel:
    """One view of the scene: a title, a label layer drawn filled, one drawn as outline, a map drawn as heat.

    Each names a layer of :func:`volume_scene`'s ``layers`` (or ``maps`` for ``heat``), or is None.
    """

    title: str
    fill: str | None = None
    outline: str | None = None
    heat: str | None = None


def canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``array`` (X, Y, Z) on the closest RAS+ axes: (array, its affine, the orientation ``ornt`` applied).

    ``ornt`` is nibabel's: row ``a`` = (target axis, ±1) of source axis ``a``.
    """
    ornt = nibabel.io_orientation(affine)
    moved = nibabel.apply_orientation(array, ornt)
    return moved, affine @ nibabel.orientations.inv_ornt_aff(ornt, array.shape), ornt


def canonical_index(index: tuple[int, int, int], shape: tuple[int, ...], ornt: np.ndarray) -> list[int]:
    """Where voxel ``index`` of the source grid (``shape``) lands after :func:`canonical` with ``ornt``."""
    moved = [0, 0, 0]
    for axis, (target, flip) in enumerate(ornt.astype(int)):
        moved[target] = shape[axis] - 1 - index[axis] if flip < 0 else index[axis]
    return moved


def _blob(array: np.ndarray) -> bytes:
    return zlib.compress(np.asarray(array).tobytes(order="F"), 1)


def _label_dtype(labels: np.ndarray, name: str) -> np.dtype:
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise SparError(f"volume_scene: layer {name!r} holds labels outside 0..65535")
    return np.dtype(np.uint8) if not labels.size or labels.max() <= 255 else np.dtype(np.uint16)


def volume_scene(
    image: np.ndarray,
    affine: np.ndarray,
    *,
    layers: dict[str, np.ndarray],
    panels: list[Panel],
    names: dict[int, str],
    maps: dict[str, np.ndarray] | None = None,
    map_max: float | None = None,
    slice_axis: int = 2,
    focus: tuple[int, int, int] | None = None,
    window: tuple[float, float] | None = None,
    title: str = "",
    exam: str = "",
) -> bytes:
    """Pack an exam for the volume viewer.

    Args:
        image: (X, Y, Z) intensities, any real dtype.
        affine: (4, 4) voxel -> world (mm) of ``image``.
        layers: name -> (X, Y, Z) integer label volume on the image's grid (truth, each prediction).
        panels: the views to draw side by side, all linked to one cursor, window and zoom.
        names: label value -> structure name (background excluded); colours follow
            :func:`~spar_core.figures.slices.structure_colors` in value order, as in every other figure.
        maps: name -> (X, Y, Z) non-negative float map (uncertainty, nats) shown as heat where a panel asks.
        map_max: the top of every map's colour scale, one scale for all (default: each map's own maximum).
        slice_axis: the source voxel axis the exam was sliced along; its plane is shown first.
        focus: the source voxel the cursor starts on (default: the centre).
        window: the starting window (low, high) in image units (default: the image's 0.5th-99.5th percentiles).
        title: a line shown above the panels.
        exam: what the image is (a case id); the viewer keeps its cursor, window and zoom across scenes of one
            exam (a toggled layer) and starts afresh on another.

    Returns:
        The packed scene (see the module docstring).

    Raises:
        SparError: a layer or map on another grid, a panel naming a missing layer, ``image`` not 3D.
    """
    if image.ndim != 3:
        raise SparError(f"volume_scene: image of shape {image.shape}; expected (X, Y, Z)")
    maps = maps or {}
    for kind, volumes in (("layer", layers), ("map", maps)):
        for name, volume in volumes.items():
            if volume.shape != image.shape:
                raise SparError(f"volume_scene: {kind} {name!r} of shape {volume.shape}; expected the image's "
                                f"{image.shape}")
    for panel in panels:
        for field, known in (("fill", layers), ("outline", layers), ("heat", maps)):
            wanted = getattr(panel, field)
            if wanted is not None and wanted not in known:
                raise SparError(f"volume_scene: panel {panel.title!r} asks for {field} {wanted!r}; known: "
                                f"{sorted(known)}")

    moved, ras_affine, ornt = canonical(np.asarray(image, dtype=np.float32), np.asarray(affine, dtype=float))
    finite = moved[np.isfinite(moved)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    quantized = np.round((np.nan_to_num(moved, nan=lo) - lo) / span * IMAGE_LEVELS).clip(0, IMAGE_LEVELS)
    if window is None:
        window = tuple(float(v) for v in np.percentile(finite, [0.5, 99.5])) if finite.size else (lo, hi)
    centre = tuple(s // 2 for s in image.shape) if focus is None else tuple(int(v) for v in focus)

    blobs: list[tuple[dict, bytes]] = [({"kind": "image", "name": "image", "dtype": "uint16"},
                                        _blob(quantized.astype(np.uint16)))]
    for name, labels in layers.items():
        dtype = _label_dtype(labels, name)
        blobs.append(({"kind": "layer", "name": name, "dtype": dtype.name},
                      _blob(canonical(labels, affine)[0].astype(dtype))))
    for name, values in maps.items():
        top = map_max if map_max is not None else (float(np.nanmax(values)) if values.size else 1.0)
        top = top if np.isfinite(top) and top > 0 else 1.0
        scaled = np.round(np.nan_to_num(canonical(values, affine)[0], nan=0.0) / top * MAP_LEVELS)
        blobs.append(({"kind": "map", "name": name, "dtype": "uint8", "step": top / MAP_LEVELS},
                      _blob(scaled.clip(0, MAP_LEVELS).astype(np.uint8))))

    colors = structure_colors(len(names))
    offset, entries = 0, []
    for entry, data in blobs:
        entries.append({**entry, "offset": offset, "length": len(data)})
        offset += len(data)
    header = {
        "title": title,
        "exam": exam,
        "shape": list(moved.shape),
        "source_shape": list(image.shape),
        "ornt": ornt.astype(int).tolist(),
        "spacing": [float(v) for v in np.linalg.norm(ras_affine[:3, :3], axis=0)],
        "affine": ras_affine.tolist(),
        "intensity": {"low": lo, "step": span / IMAGE_LEVELS},
        "window": [float(window[0]), float(window[1])],
        "plane": PLANES[int(ornt[slice_axis, 0])],
        "cursor": canonical_index(centre, image.shape, ornt),
        "structures": [{"value": int(v), "name": names[v], "color": c} for v, c in zip(sorted(names), colors)],
        "blobs": entries,
        "panels": [{"title": p.title, "fill": p.fill, "outline": p.outline, "heat": p.heat} for p in panels],
    }
    text = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + b"".join(data for _, data in blobs)


def read_scene(scene: bytes) -> tuple[dict, dict[tuple[str, str], np.ndarray]]:
    """The header and the arrays ((kind, name) -> (X, Y, Z) in RAS+ axes; kind "image", "layer" or "map") of a
    packed scene, as the viewer reads them (the image dequantized to float32).

    Raises:
        SparError: not a scene.
    """
    if scene[:4] != MAGIC or len(scene) < 8:
        raise SparError("read_scene: not a spar volume scene (magic SPV1 missing)")
    (length,) = struct.unpack("<I", scene[4:8])
    header = json.loads(scene[8:8 + length])
    body, shape, arrays = scene[8 + length:], tuple(header["shape"]), {}
    for blob in header["blobs"]:
        raw = zlib.decompress(body[blob["offset"]:blob["offset"] + blob["length"]])
        array = np.frombuffer(raw, dtype=blob["dtype"]).reshape(shape, order="F")
        if blob["kind"] == "image":
            array = (header["intensity"]["low"] + array * header["intensity"]["step"]).astype(np.float32)
        elif blob["kind"] == "map":
            array = (array * blob["step"]).astype(np.float32)
        arrays[(blob["kind"], blob["name"])] = array
    return header, arrays
