"""spar: shape-prior and latent adversarial regularization for multi-bone MR segmentation.

One subpackage per layer, in the order the data flows; a subpackage imports only the foundation (``errors``,
``paths``, ``progress``, ``methods``) and the subpackages below it:

``data`` → ``layout`` (the run and study folders every stage writes), ``scoring`` (the metric engine: numpy and
scipy only), ``models`` → ``training`` → ``inference`` → ``postprocessing`` (whose data-driven decision scores its
candidates with ``scoring``) → ``evaluation`` → ``latent`` → ``triage`` → ``pipeline`` (the stages named as
nnU-Net names its own). ``runs`` (background jobs, the folder lock, uploads), ``figures`` and ``cli`` sit on top,
beside the app.
"""

__version__ = "0.1.0"
