"""plasticity: loss of plasticity and the stability gap, reproduced (Dohare et al. 2024, AdaLin 2025, NGM-SGD 2025)."""
__version__ = "0.1.0"
