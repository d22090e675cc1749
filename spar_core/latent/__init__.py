"""Latent: the per-epoch shape codes read back, embedded in 2D (t-SNE, aligned t-SNE, UMAP), and their
convergence measured in the latent space.

Imports the foundation and the run folder's layout; no other stage.
"""
