"""spar: shape-prior and latent adversarial regularization for multi-bone MR segmentation.

One subpackage per pipeline stage, in the order the data flows; a stage imports only the foundation
(``errors``, ``paths``, ``progress``, ``methods``) and the stages before it:

``data`` → ``models`` → ``training`` → ``inference`` → ``postprocessing`` → ``evaluation`` → ``latent`` → ``triage``
→ ``pipeline`` (the first six named as nnU-Net names its stages). One exception, as in nnU-Net: post-processing's
data-driven decision scores its candidates with the metric engine (``evaluation.metrics``, ``surface`` and
``identity``: numpy and scipy only).
``runs`` holds the run folder every stage writes (its layout importable from anywhere) and the background jobs;
``figures`` and ``cli`` sit on top, beside the app.
"""

__version__ = "0.1.0"
