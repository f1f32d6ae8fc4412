"""Shrink and Perturb (Ash & Adams 2020) as the loss-of-plasticity reference runs it online: every step, SGD
with weight decay (the shrink, factor 1 - lr·wd) and then Gaussian noise of std `noise_std` added to every
weight and bias (the perturb). With `optimizer: adam` the step is AdamW's, whose decoupled weight decay is the
same multiplicative shrink 1 - lr·wd (Adam's coupled decay would be rescaled by the moments: no longer a shrink)."""
import torch

from plasticity.methods import Learner, register
from plasticity.methods.optimizers import make_optimizer
from plasticity.seeding.normal_stream import NormalStream


class Perturbation:
    """Adds N(0, noise_std²) to every parameter, from per-seed streams (parameters carry a leading seed dim).

    Call it after each optimizer step; with `torch.optim.SGD(weight_decay=wd)` that is Shrink and Perturb. CPU
    parameters get the noise generated and added in one pass over their memory (`NormalStream.add_to`); those on
    another device get the same numbers, generated on the CPU and added there."""

    def __init__(self, params, noise_std: float, seeds: list[int]):
        self.noise_std = noise_std
        self.noise = {param: NormalStream(seeds, f"perturb:{index}", param.shape[1:], device=param.device)
                      for index, param in enumerate(params)}

    @torch.no_grad()
    def __call__(self, hidden=None) -> None:
        for param, stream in self.noise.items():
            stream.add_to(param, self.noise_std)

    def state_dict(self) -> dict:
        return {"noise": [stream.state_dict() for stream in self.noise.values()]}

    def load_state_dict(self, state: dict) -> None:
        for stream, saved in zip(self.noise.values(), state["noise"]):
            stream.load_state_dict(saved)


@register("shrink_perturb")
def build(model, seeds, lr: float, weight_decay: float, noise_std: float, optimizer: str = "sgd",
          momentum: float = 0.0) -> Learner:
    """Shrink and Perturb: weight decay and Gaussian noise on every parameter after each step."""
    perturbation = Perturbation(list(model.parameters()), noise_std, seeds)
    return Learner(make_optimizer(model.parameters(), optimizer, lr, weight_decay, decoupled=True,
                                  momentum=momentum),
                   after_step=perturbation, state=perturbation)
