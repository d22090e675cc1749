"""Slice browser: one exam, slice by slice, with its label overlay, window / level and volumes."""

import pandas as pd
import streamlit as st

import data_access
import demo_offer
import state
from spar_core.errors import SparError
from spar_core.paths import runs_root
from spar_core.figures import extract_slice, in_plane_spacing, slice_figure, structure_colors

SLICE_KEY, OPACITY_KEY, MODE_KEY, WINDOW_KEY = "slice", "opacity", "overlay_mode", "window"

st.title("Slice browser")
selection = state.current()
demo_offer.offer_demo(runs_root(), selection.root, key="demo_offer_browse")
if selection.dataset is None or selection.exam is None:
    st.info("Pick a dataset and an exam in the sidebar.")
    st.stop()
dataset = selection.dataset
try:
    exam = data_access.get_exam(dataset, selection.exam)
except SparError as err:
    st.error(str(err))
    st.stop()

axis = exam.slice_axis
n_slices = exam.image.shape[axis]
shown = (str(dataset.root), exam.case_id)
if st.session_state.get("_slice_exam") != shown or SLICE_KEY not in st.session_state:
    st.session_state[SLICE_KEY] = exam.first_slice  # a new exam starts on its most labelled slice
    st.session_state["_slice_exam"] = shown

figure_col, control_col = st.columns([3, 1])
with control_col:
    if n_slices > 1:
        index = st.slider(f"Slice (axis {axis})", 0, n_slices - 1, key=SLICE_KEY)
    else:
        index = 0
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.4, 0.05, key=OPACITY_KEY)
    mode = st.radio("Overlay", ["fill", "contour"], horizontal=True, key=MODE_KEY, format_func=str.capitalize)
    lo, hi = st.slider(
        "Window (normalized intensity)", 0.0, 1.0, (0.0, 1.0), 0.01, key=WINDOW_KEY,
        help="Intensities are scaled per exam to [0, 1] between its 0.5th and 99.5th percentiles.",
    )

names = {value: name for name, value in dataset.structures.items()}
figure = slice_figure(
    extract_slice(exam.image, axis, index),
    None if exam.label is None else extract_slice(exam.label, axis, index),
    spacing2d=in_plane_spacing(exam.spacing, axis),
    names=names,
    opacity=opacity,
    mode=mode,
    window=(lo, max(hi, lo + 0.01)),
    title=f"{exam.case_id} — slice {index} of {n_slices - 1}",
    axis=axis,
    index=index,
)
with figure_col:
    st.plotly_chart(figure, width="stretch")

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
