"""Masks for imported DICOM series, from the three places annotation tools put them, on the image's grid.

- a NIfTI label file (ITK-SNAP, 3D Slicer): ``MASKS/<case>.nii.gz`` (or ``.nii``), named after the case id or
  the PatientID; axes stored in another order are permuted back through the affines, then the grid (shape,
  spacing, directions, origin) must be the image's;
- a DICOM SEG (annotation tools, PACS): found in the DICOM folder or in ``MASKS`` by the series it refers to;
  its segments are read by highdicom frame by frame against the image's own SOPInstanceUIDs, so the order of
  its frames does not matter;
- one NumPy array per slice: ``MASKS/<case>/<k>.npy`` with ``k`` the 0-based slice index along the written
  image's slice axis, or ``MASKS/<case>/<SOPInstanceUID>.npy``; each array is rows × columns as the DICOM
  slice shows them (``transpose`` for columns × rows); a slice without a file is background.

Each returns labels (X, Y, Z) in the written image's voxel order and the names of the label values it knows
(a SEG names its segments; the other two take names from the command line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import nibabel
import numpy as np

from spar_core.data.checks import check_same_affine, check_same_grid, dims, header_spacing, integer_labels
from spar_core.data.nifti import NIFTI_SUFFIXES, read_nifti
from spar_core.data.orientation import reorient
from spar_core.errors import SparError

_SLICE_FILE = re.compile(r"^(\d+)\.npy$")


def nifti_mask(path: Path, image: nibabel.Nifti1Image) -> np.ndarray:
    """The label file at ``path`` on ``image``'s grid (axes permuted back if stored in another order).

    Raises:
        SparError: unreadable, non-integer labels, or a grid that is not the image's after reordering.
    """
    img = read_nifti(path)
    data = np.asanyarray(img.dataobj)
    if data.ndim != 3:
        raise SparError(f"{path}: mask of {data.ndim} dimensions {dims(data.shape)}; expected a 3D label volume")
    labels = integer_labels(data, path)
    labels, affine = reorient(labels, img.affine, image.affine)
    spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    check_same_grid(labels.shape, spacing, image.shape, header_spacing(image.header, path),
                    what=f"{path}: mask", ref="image")
    check_same_affine(affine, image.affine, what=f"{path}: mask")
    return labels


def seg_mask(path: Path, instance_uids: Sequence[str], image: nibabel.Nifti1Image) -> tuple[np.ndarray, dict[str, int]]:
    """A DICOM SEG's segments as one label map on ``image``'s grid, and its segment names -> numbers.

    ``instance_uids`` are the image's SOPInstanceUIDs in the order of its slice axis.
    Raises:
        SparError: unreadable SEG, overlapping segments, frames of another image, a grid not the image's.
    """
    import highdicom  # imported here: only import needs it

    try:
        seg = highdicom.seg.segread(path)
        names = {seg.get_segment_description(n).segment_label: int(n) for n in seg.segment_numbers}
        stack = seg.get_pixels_by_source_instance(source_sop_instance_uids=list(instance_uids),
                                                  combine_segments=True)
    except (ValueError, KeyError, AttributeError, RuntimeError, OSError) as err:
        raise SparError(f"{path}: cannot read this DICOM SEG against its image ({' '.join(str(err).split())})") \
            from None
    labels = np.ascontiguousarray(np.asarray(stack).transpose(2, 1, 0))  # (slice, row, col) -> (col, row, slice)
    if labels.shape != image.shape:
        raise SparError(f"{path}: SEG frames of {dims(labels.shape)}; expected the image's grid {dims(image.shape)}")
    return integer_labels(labels, path), names


def slice_arrays_mask(folder: Path, instance_uids: Sequence[str], image: nibabel.Nifti1Image,
                      transpose: bool = False) -> np.ndarray:
    """Per-slice ``.npy`` masks in ``folder`` (naming rule in the module docstring) as labels on ``image``'s grid.

    Raises:
        SparError: a file name outside the rule, an index or UID the image does not have, an unreadable
            array, a slice of another size, non-integer values; no file at all.
    """
    columns, rows, n_slices = image.shape
    by_uid = {uid: k for k, uid in enumerate(instance_uids)}
    labels = np.zeros(image.shape, dtype=np.int32)
    found = 0
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        match = _SLICE_FILE.match(path.name)
        if match:
            k = int(match.group(1))
        elif path.suffix == ".npy" and path.stem in by_uid:
            k = by_uid[path.stem]
        else:
            raise SparError(f"{path}: not a slice mask name; expected <k>.npy (k = 0..{n_slices - 1}, the slice "
                            "index) or <SOPInstanceUID>.npy of one of the series' images")
        if k >= n_slices:
            raise SparError(f"{path}: slice {k} of a series of {n_slices} slices; expected k in 0..{n_slices - 1}")
        try:
            array = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError, EOFError) as err:
            raise SparError(f"{path}: not a readable .npy array ({' '.join(str(err).split())})") from None
        array = array.T if transpose else array
        if array.shape != (rows, columns):
            hint = " (--transpose for columns × rows)" if array.shape == (columns, rows) else ""
            raise SparError(f"{path}: slice mask of shape {array.shape}; expected rows × columns = "
                            f"{(rows, columns)}{hint}")
        labels[:, :, k] = integer_labels(np.asarray(array), path).T
        found += 1
    if not found:
        raise SparError(f"{folder}: no slice mask; expected <k>.npy or <SOPInstanceUID>.npy files")
    return integer_labels(labels, folder)


def find_mask_file(masks: Path, names: Sequence[str]) -> Path | None:
    """The mask of a case in ``masks``: a NIfTI file or a folder of slices named after one of ``names``."""
    for name in names:
        for suffix in NIFTI_SUFFIXES:
            if (masks / f"{name}{suffix}").is_file():
                return masks / f"{name}{suffix}"
        if (masks / name).is_dir():
            return masks / name
    return None
