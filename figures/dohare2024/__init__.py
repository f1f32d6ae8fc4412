"""Dohare et al. 2024, Loss of plasticity in deep continual learning (Nature): Extended Data Figs. 2-4."""
