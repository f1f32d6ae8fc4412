"""Shrink and Perturb (Ash & Adams 2020) as the loss-of-plasticity reference runs it online: every step, SGD
with weight decay (the shrink, factor 1 - lr·wd) and then Gaussian noise of std `noise_std` added to every
weight and bias (the perturb)."""
import torch

from plasticity.methods import Learner, register
from plasticity.seeding import ChunkedStream, generators

NOISE_CHUNK_ELEMENTS = 1 << 20  # per-seed noise drawn this many elements at a time (fixed: block invariance)


class ShrinkPerturb(torch.optim.SGD):
    """SGD + weight decay, then w += N(0, noise_std²); noise from per-seed streams (parameters carry a leading
    seed dimension, one generator per seed)."""

    def __init__(self, params, lr: float, weight_decay: float, noise_std: float, gens: list[torch.Generator]):
        params = list(params)
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.noise_std = noise_std
        self.noise = {p: ChunkedStream(gens, p.shape[1:], chunk=max(1, NOISE_CHUNK_ELEMENTS // p[0].numel()),
                                       device=p.device)
                      for p in params}

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for param, stream in self.noise.items():
            param.add_(stream.next(), alpha=self.noise_std)
        return loss


@register("shrink_perturb")
def build(model, seeds, lr: float, weight_decay: float, noise_std: float) -> Learner:
    return Learner(ShrinkPerturb(model.parameters(), lr, weight_decay, noise_std, generators(seeds, "perturb")))
