"""Razavi Rohani et al. 2025, Adaptive linearity injection (AdaLin): online accuracy, ablation, α and correlates
(the paper's figure numbers are not in our reference; the names say what each shows)."""
