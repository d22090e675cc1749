"""spar's app: the router and the frame around every page (``streamlit run app/main.py``).

The frame writes the built-in phantom cohorts on a fresh machine, starts building the demo run when there is no
run (``demo_offer``: announced on every page while it runs), draws the shared sidebar (data folder,
dataset, exam; see ``state.py``) and runs the selected page. Pages are thin scripts in ``views/`` (not ``pages/``, which would switch Streamlit to its legacy multipage mode);
the longer pages' panels are ``*_ui()`` functions in ``panels/``. What pages read goes through ``data_access`` (data
folders, datasets, exams) and ``run_access`` (run folders); ``*_access`` modules named after a page hold its table
work.
"""

import streamlit as st

st.set_page_config(page_title="spar", layout="wide")

import data_access  # noqa: E402  (set_page_config must come first)
import demo_offer  # noqa: E402
import state  # noqa: E402
from spar_core.paths import runs_root  # noqa: E402

page = st.navigation([
    st.Page("views/browse.py", title="Slice browser", icon=":material/layers:"),
    st.Page("views/compare.py", title="Compare methods", icon=":material/grid_view:"),
    st.Page("views/results.py", title="Results", icon=":material/table_chart:"),
    st.Page("views/latent.py", title="Latent convergence", icon=":material/scatter_plot:"),
    st.Page("views/triage.py", title="Outlier triage", icon=":material/troubleshoot:"),
    st.Page("views/runs.py", title="Runs", icon=":material/play_circle:"),
])
root = data_access.bootstrap_if_fresh()
demo_offer.autostart(runs_root(), root)  # a machine with no run builds the demo run by itself
state.sidebar(root)
demo_offer.announce(runs_root())
page.run()
