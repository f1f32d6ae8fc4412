"""From tidy per-job results to what the papers print: aggregates across seeds, the stability-gap metrics, the
papers' tables and the reproduction table. Pure pandas and NumPy: nothing here imports torch, so the analysis
rules run (and are tested) without the training stack."""
