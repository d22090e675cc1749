"""Plotly figure builders shared by the app and the notebooks (no streamlit here: they return figures).

On top of the stages: may import any of them, and is imported only by the app, notebooks and tests.
"""

from spar_core.figures.slices import (
    PALETTE,
    busiest_slice,
    extract_slice,
    in_plane_axes,
    in_plane_spacing,
    slice_figure,
    structure_colors,
)

__all__ = [
    "PALETTE",
    "busiest_slice",
    "extract_slice",
    "in_plane_axes",
    "in_plane_spacing",
    "slice_figure",
    "structure_colors",
]
