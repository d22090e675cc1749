"""The volume viewer in a Jupyter output cell: the same viewer as the app's, the scene and the script inlined.

Nothing is fetched: the cell's HTML holds the viewer's JavaScript and the packed scene (base64). JupyterLab runs
it for a trusted notebook (one you executed); elsewhere (a notebook rendered without running it, nbconvert to
a static page) the cell shows the fallback text, and the notebook's static Plotly figures remain.
"""

from __future__ import annotations

import base64
import uuid

from spar_core.errors import SparError
from spar_core.figures.volume_scene import VIEWER_CSS, VIEWER_JS

LIMIT_BYTES = 64 * 2**20  # a scene above this would make the notebook file unwieldy


class NotebookViewer:
    """Displays as the viewer in Jupyter (``_repr_html_``); ``html`` is the whole cell output."""

    def __init__(self, scene: bytes) -> None:
        if len(scene) > LIMIT_BYTES:
            raise SparError(f"notebook_viewer: scene of {len(scene) / 2**20:.0f} MB; at most "
                            f"{LIMIT_BYTES / 2**20:.0f} MB fit a notebook cell (crop the exam or leave layers out)")
        uid = f"spar-viewer-{uuid.uuid4().hex[:12]}"
        encoded = base64.b64encode(scene).decode("ascii")
        self.html = (
            f"<style>{VIEWER_CSS.read_text(encoding='utf-8')}</style>"
            f'<div id="{uid}"><noscript>The volume viewer needs JavaScript.</noscript></div>'
            f'<script type="module">\n{VIEWER_JS.read_text(encoding="utf-8")}\n'
            f'const text = atob("{encoded}");\n'
            "const bytes = new Uint8Array(text.length);\n"
            "for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);\n"
            f'mount({{ data: bytes, parentElement: document.getElementById("{uid}") }});\n'
            "</script>"
        )

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "<spar volume viewer: run this cell in JupyterLab to scroll the exam>"


def notebook_viewer(scene: bytes) -> NotebookViewer:
    """The packed ``scene`` (:func:`~spar_core.figures.volume_scene.volume_scene`) as a notebook cell's output.

    Raises:
        SparError: a scene larger than :data:`LIMIT_BYTES`.
    """
    return NotebookViewer(scene)
