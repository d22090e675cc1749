"""The volume viewer on a page: a packed scene (:mod:`spar_core.figures.volume_scene`) handed to the browser once.

The component (``spar_core/figures/assets/volume_viewer.js``, a Streamlit v2 component: no iframe, no build step, nothing
fetched) draws the slices itself, so slice steps, window/level, zoom, pan and the crosshair never rerun the
page. A rerun that hands it the same scene changes nothing on screen; a new scene of the same exam keeps the
cursor, window and zoom.
"""

from __future__ import annotations

import streamlit as st

from spar_core.figures.volume_scene import VIEWER_CSS, VIEWER_JS

_component = st.components.v2.component(
    "spar_volume_viewer",
    js=VIEWER_JS.read_text(encoding="utf-8"),
    css=VIEWER_CSS.read_text(encoding="utf-8"),
    isolate_styles=False,
)


def volume_viewer_ui(scene: bytes, *, key: str) -> None:
    """Show ``scene`` in the viewer; ``key`` keeps the viewer (and its cursor) across reruns of the page."""
    _component(data=scene, key=key, height="content")
