"""Slice browser: one exam in the volume viewer (slices, three planes, window / level, labels) and its volumes."""

import pandas as pd
import streamlit as st

import data_access
import demo_offer
import scene_access
import state
from panels.volume_viewer import volume_viewer_ui
from spar_core.figures import structure_colors
from spar_core.paths import runs_root

st.title("Slice browser")
selection = state.current()
demo_offer.offer_demo(runs_root(), selection.root, key="demo_offer_browse")
if selection.dataset is None or selection.exam is None:
    st.info("Pick a dataset and an exam in the sidebar.")
    st.stop()
dataset = selection.dataset
with state.shown_errors():
    exam = data_access.get_exam(dataset, selection.exam)

axis = exam.slice_axis
with state.shown_errors():
    scene = scene_access.exam_scene(dataset, exam)
names = {value: name for name, value in dataset.structures.items()}
figure_col, control_col = st.columns([3, 1])
with figure_col:
    volume_viewer_ui(scene, key="browse_viewer")
with control_col:
    mm = " × ".join(f"{s:.3g}" for s in exam.spacing)
    st.dataframe(
        pd.DataFrame(
            {
                "": ["shape (voxels)", "spacing (mm)", "slice axis"],
                "value": [" × ".join(map(str, exam.image.shape)), mm, f"{axis} ({'ijk'[axis]})"],
            }
        ),
        hide_index=True,
    )
    if exam.volumes_ml:
        colors = dict(zip(names.values(), structure_colors(len(names))))
        volumes = pd.DataFrame(
            {
                "": ["■"] * len(exam.volumes_ml),  # coloured like the overlay, below
                "structure": list(exam.volumes_ml),
                "volume (mL)": list(exam.volumes_ml.values()),
            }
        )
        swatch = volumes.style.apply(lambda _: [f"color: {colors[n]}" for n in volumes["structure"]], subset=[""])
        st.dataframe(swatch.format({"volume (mL)": "{:.2f}"}), hide_index=True)
