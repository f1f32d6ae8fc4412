"""Rodriguez-Garcia et al. 2025, noradrenergic-inspired gain modulation and the stability gap: Figs. 2-5, the
appendix gain per task, and companions of Figs. 3-4 with the runs the paper does not show (`*_extra`)."""
