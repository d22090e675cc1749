"""Latent convergence: where each method's predicted shape codes lie relative to the true ones, epoch by epoch
(paper §3.4, Fig. 3), the mean latent distance that measures it, and the slice behind any point."""

import streamlit as st

import latent_access
import run_access
import state
from panels import latent_map

st.title("Latent convergence")
selection = state.current()
run = state.require_run(selection)

folds = run.folder.folds()
if not folds:
    where = run_access.relative(run, run.folder.split_path("<k>"))
    st.info(f"Run {run.name!r} has no fold yet ({where}): the latent codes appear once it trains.")
    st.stop()
fold_col, *picker_cols = st.columns([1, 1, 1, 2])
with fold_col:
    fold = latent_map.fold_ui(run, folds)
with state.shown_errors():
    table = run_access.get_embeddings(run, fold)
    convergence = run_access.get_convergence(run, fold)
    distances = run_access.get_pair_distances(run, fold)

if table is None:
    latent_map.no_maps_ui(run, fold, can_compute=convergence is not None)
else:
    choice = latent_map.pickers_ui(table, run, selection.method, picker_cols)
    shown = latent_map.points(latent_access.map_rows(table, choice.kind, choice.method, choice.shown))
    map_col, slice_col = st.columns([3, 2])
    with map_col:
        latent_map.scatter_ui(table, choice, shown, fold)
    with slice_col:
        post = latent_map.point_ui(run, shown)
        latent_map.pair_slice_ui(run, selection, fold, choice.method, shown.point, post, distances)

st.subheader("Mean latent distance per epoch")
latent_map.convergence_ui(run, fold, convergence)
