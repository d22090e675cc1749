"""spar: shape-prior and latent adversarial regularization for multi-bone MR segmentation."""

__version__ = "0.1.0"
