"""Training: presets, the segmenter's loss and the four regularizers, the shape auto-encoder's pre-training, the
segmenter's loop, checkpoints, epochs and their random streams, precisions, devices and torchrun.

Imports the foundation, ``spar_core.data``, ``spar_core.models`` and the run folder's layout; no later stage.
"""
