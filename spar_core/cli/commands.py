"""The sub-commands of ``spar``, in pipeline order: name, module of this package, and the one line of help
``spar --help`` lists. Light on purpose: ``spar --help`` reads this table and imports no sub-command."""

from __future__ import annotations

# (command, module in spar_core.cli, one-line help)
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("import", "import_dicom", "DICOM series (+ NIfTI, DICOM SEG or per-slice NumPy masks) -> a dataset folder"),
    ("check", "check", "validate a dataset folder (dataset.json + NIfTI files) and summarize it"),
    ("phantoms", "phantoms", "write synthetic pediatric MR exams (ankle or shoulder) as a dataset folder"),
    ("train", "train", "train one method on one fold"),
    ("predict", "predict", "segment exams with a trained method (fold ensemble, uncertainty maps)"),
    ("evaluate", "evaluate", "score a predicted label volume against the truth (Dice, RAVD, ASSD, MSSD) as CSV"),
    ("crossval", "crossval", "cross-validate the methods on a dataset"),
    ("embed", "embed", "t-SNE / aligned t-SNE / UMAP maps of the latent codes, and convergence"),
    ("triage", "triage", "rank exams by outlier scores of their predictions (no labels needed)"),
    ("report", "report", "Table 1 and significance tests of a run"),
    ("study", "study", "data-efficiency and robustness studies of the methods"),
    ("demo", "demo", "build the demo run on the built-in phantoms (a few minutes on a CPU)"),
)


def summary(command: str) -> str:
    """The one-line help of ``command``."""
    return next(text for name, _, text in COMMANDS if name == command)
