"""Latent convergence: where each method's predicted shape codes lie relative to the true ones, epoch by epoch
(paper §3.4, Fig. 3), the mean latent distance that measures it, and the slice behind any point."""

import streamlit as st

import data_access
import latent_access
import state
from spar_core.runs import jobs
from spar_core.latent.embedding import EMBEDDINGS
from spar_core.errors import SparError
from spar_core.figures import extract_slice, in_plane_spacing
from spar_core.figures.latent import (
    EMBEDDING_LABELS,
    convergence_figure,
    embedding_scatter,
    pair_slice_figure,
    structure_names,
)
from spar_core.methods import display_name, method_order

FOLD_KEY, EMBEDDING_KEY, METHOD_KEY = "latent_fold", "latent_embedding", "latent_method"
STRUCTURES_KEY, POINT_KEY, SCATTER_KEY, POST_KEY = "latent_structures", "latent_point", "latent_scatter", "latent_post"
EPOCH_KEY, FOLLOWED_KEY = "_latent_epoch", "_latent_sidebar_method"

st.title("Latent convergence")
selection = state.current()
run = state.require_run(selection)


def _keep(key: str, options: list, default) -> None:
    """Point a widget's stored value at an option: ``default`` when it holds none of them."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]


def _clicked() -> None:
    """A click on the scatter picks the point in the selectbox (a callback: before the page is drawn)."""
    picked = latent_access.clicked_point(st.session_state.get(SCATTER_KEY))
    if picked is not None:
        st.session_state[POINT_KEY], st.session_state[EPOCH_KEY] = picked


try:
    folds = latent_access.run_folds(run)
except SparError as err:
    st.error(str(err))
    st.stop()
if not folds:
    st.info(f"Run {run.name!r} has no fold yet (folds/<k>/split.json): the latent codes appear once it trains.")
    st.stop()
with_maps = [f for f in folds if latent_access.embeddings_file(run, f).is_file()]
_keep(FOLD_KEY, folds, with_maps[0] if with_maps else folds[0])
fold_col, kind_col, method_col, structure_col = st.columns([1, 1, 1, 2])
with fold_col:
    fold = st.selectbox("Fold", folds, key=FOLD_KEY,
                        format_func=lambda f: f"fold {f}" + ("" if f in with_maps else " (no maps yet)"))
try:
    table = latent_access.get_embeddings(run, fold)
    convergence = latent_access.get_convergence(run, fold)
    distances = latent_access.get_pair_distances(run, fold)
except SparError as err:
    st.error(str(err))
    st.stop()

if table is None:
    command = f"spar embed {run.root} --fold {fold}"
    st.info(f"No latent maps for fold {fold} of run {run.name!r} yet. Compute them with `{command}` (t-SNE, "
            "aligned t-SNE and UMAP of every snapshot epoch; under a minute for a tiny run, a few minutes for "
            "the demo), or start that command here as a background job (it shows on the Runs page).")
    if convergence is not None and st.button("Compute the maps in the background", key="latent_compute"):
        try:
            job = jobs.start(["embed", run.root, "--fold", str(fold)], title=f"Latent maps of {run.name}, fold {fold}",
                             run_dir=run.root)
        except SparError as err:
            st.warning(str(err))
        else:
            st.success(f"Started job {job.id}; reload this page when it has finished.")
else:
    kinds = [k for k in EMBEDDINGS if k in set(table["embedding"])]
    methods = method_order([str(m) for m in table["method"].unique()])
    structures = structure_names(run.config.get("labels") or {})
    present = set(table["structure"])
    shown_options = [s for s in structures if s in present] + sorted(present - set(structures))
    _keep(EMBEDDING_KEY, kinds, "aligned")
    if st.session_state.get(FOLLOWED_KEY) != selection.method:  # the sidebar's method moved: follow it
        st.session_state[FOLLOWED_KEY] = selection.method
        if selection.method in methods:
            st.session_state[METHOD_KEY] = selection.method
    _keep(METHOD_KEY, methods, selection.method)
    with kind_col:
        kind = st.selectbox("Map", kinds, key=EMBEDDING_KEY, format_func=lambda k: EMBEDDING_LABELS.get(k, k),
                            help="Aligned t-SNE and UMAP: one map of the true codes, each epoch's predicted codes "
                                 "placed into it, so movement between epochs is real. t-SNE: refitted every "
                                 "epoch (the paper's figure); positions do not compare across epochs.")
    with method_col:
        method = st.selectbox("Method", methods, key=METHOD_KEY, format_func=display_name)
    if STRUCTURES_KEY in st.session_state:  # picks of another run's structures are dropped
        st.session_state[STRUCTURES_KEY] = [s for s in st.session_state[STRUCTURES_KEY] if s in shown_options]
    with structure_col:
        shown = st.multiselect("Structures", shown_options, key=STRUCTURES_KEY, placeholder="all structures")
    shown = shown or shown_options  # nothing picked: all

    rows = table[(table["embedding"] == kind) & (table["method"] == method) & table["structure"].isin(shown)]
    options = latent_access.point_options(rows)
    _keep(POINT_KEY, list(options), next(iter(options)))
    epochs = sorted(int(e) for e in rows["epoch"].unique())
    if st.session_state.get(EPOCH_KEY) not in epochs:
        st.session_state[EPOCH_KEY] = epochs[-1]
    point = options[st.session_state[POINT_KEY]]

    map_col, slice_col = st.columns([3, 2])
    with map_col:
        figure = embedding_scatter(table, kind, method, structures=structures, show=shown,
                                   epoch=st.session_state[EPOCH_KEY], selected=point)
        st.plotly_chart(figure, on_select=_clicked, selection_mode="points", key=SCATTER_KEY, width="stretch")
        st.caption(f"Fold {fold}: {len(options)} (slice, structure) pairs of the fold's held-out exams, "
                   f"{len(epochs)} snapshot epochs ({', '.join(map(str, epochs))}). Click a point, or pick it "
                   "below, to see its slice; the ringed pair is the one shown.")
    with slice_col:
        st.selectbox("Point (exam · slice · structure)", list(options), key=POINT_KEY)
        post = st.toggle("Post-processed mask", value=False, key=POST_KEY,
                         help="Off: the stacked 2D outputs (pred_raw/), what the codes were computed from. "
                              "On: after the main-component and closing steps (pred/).")
        case, index, structure = point
        same = selection.dataset is not None and selection.dataset.root.resolve() == run.dataset
        try:
            dataset = selection.dataset if same else data_access.run_dataset(run, selection.root)
            exam = data_access.get_exam(dataset, case)
            value = dataset.structures.get(structure)
            if value is None:
                raise SparError(f"{dataset.root / 'dataset.json'}: no structure {structure!r} (the run's maps "
                                "name it); was the dataset edited since training?")
            volume = data_access.get_prediction(run, fold, method, case, raw=not post)
            if volume is not None and volume.shape != exam.image.shape:
                raise SparError(f"{data_access.prediction_path(run, fold, method, case, not post)}: shape "
                                f"{volume.shape}, expected the exam's {exam.image.shape}")
            axis = exam.slice_axis
            slice_view = pair_slice_figure(
                extract_slice(exam.image, axis, index),
                extract_slice(exam.label, axis, index) if exam.label is not None else None,
                None if volume is None else extract_slice(volume, axis, index),
                value, names={v: n for n, v in dataset.structures.items()},
                spacing2d=in_plane_spacing(exam.spacing, axis), axis=axis, index=index, height=460)
        except SparError as err:
            st.error(str(err))
        else:
            st.plotly_chart(slice_view, width="stretch", key="latent_slice")
            if volume is None:
                st.caption(f"No {'pred' if post else 'pred_raw'}/{case}.nii.gz for {display_name(method)} in "
                           f"fold {fold}: the true outline alone.")
            notes = [f"{display_name(method)}'s final model, {'post-processed' if post else 'raw'} (the run keeps "
                     "no mask per epoch); white: the true outline."]
            if distances is not None:
                mine = distances[(distances["method"] == method) & (distances["case"] == case)
                                 & (distances["slice"] == index) & (distances["structure"] == structure)]
                by_epoch = " · ".join(f"epoch {e}: {d:.3f}" for e, d in
                                      mine.sort_values("epoch")[["epoch", "distance"]].itertuples(index=False))
                if by_epoch:
                    notes.append(f"‖ẑ − z‖ of this pair: {by_epoch}.")
            st.caption(" ".join(notes))

st.subheader("Mean latent distance per epoch")
if convergence is None:
    st.info(f"Fold {fold} of run {run.name!r} has no latent snapshots (folds/{fold}/<method>/latent/epoch_<e>.npz) "
            "yet: they are written at the preset's snapshot epochs while the methods train.")
else:
    present = list(dict.fromkeys(convergence["structure"].astype(str)))
    picked = st.session_state.get(STRUCTURES_KEY) or []
    panels = [s for s in picked if s in present] or ["all"]
    st.plotly_chart(convergence_figure(convergence, panels, highlight=st.session_state.get(METHOD_KEY)),
                    width="stretch", key="latent_convergence")
    st.caption("Mean Euclidean distance ‖ẑ − z‖, in the shape auto-encoder's latent space, between the code of a "
               "predicted mask and the code of the true mask of the same slice and bone (the fold's held-out "
               "snapshot slices; band: ±1 SD over the pairs). A falling curve means the predictions converge to "
               "the true shapes. This number, not the 2D picture above, is the evidence: t-SNE and UMAP distort "
               "distances.")
