"""The volume viewer on a page: a packed scene (:mod:`spar_core.figures.volume_scene`) handed to the browser once.

The component (``app/assets/volume_viewer.js``, a Streamlit v2 component: no iframe, no build step, nothing
fetched) draws the slices itself, so slice steps, window/level, zoom, pan and the crosshair never rerun the
page. A rerun that hands it the same scene changes nothing on screen; a new scene of the same exam keeps the
cursor, window and zoom.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_ASSETS = Path(__file__).resolve().parents[1] / "assets"
_component = st.components.v2.component(
    "spar_volume_viewer",
    js=(_ASSETS / "volume_viewer.js").read_text(encoding="utf-8"),
    css=(_ASSETS / "volume_viewer.css").read_text(encoding="utf-8"),
    isolate_styles=False,
)


def volume_viewer_ui(scene: bytes, *, key: str) -> None:
    """Show ``scene`` in the viewer; ``key`` keeps the viewer (and its cursor) across reruns of the page."""
    _component(data=scene, key=key, height="content")
