"""Domain CIFAR-100 under joint training (the stability-gap paper, Fig. 4 right), as Hess, Tuytelaars & van de Ven
(CoLLAs 2024) define it: the network learns the 20 superclass labels; domain t holds the t-th fine class of every
superclass (fine classes of a superclass in ascending label order), so each domain has one class of each of the
20 labels; context k trains on domains 1..k. (The authors' v1 script evaluates "task 1" on fine labels {0, 1},
which are not task 1's classes: not copied.) Training images are augmented as on Split CIFAR-10; the
normalisation is CIFAR-100's own channel statistics (the paper does not state its own)."""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.contexts import Task
from plasticity.benchmarks.image_contexts import ImageContextBenchmark
from plasticity.config import ConfigError

SUPERCLASSES = 20


@register("domain_cifar100")
class DomainCifar100(ImageContextBenchmark):
    """Domain CIFAR-100 under joint training: 20 superclass labels, one fine class of each per domain."""

    dataset = "cifar100"
    image_size, out_features = 32, SUPERCLASSES
    label_key = "y_{split}_coarse"

    def __init__(self, seeds, device, num_domains: int = 5, augment: bool = True, data_path=None):
        super().__init__(seeds, device, augment, data_path)
        self.domain_classes = self.fine_classes_per_domain(self.classes["train"], self.labels["train"])
        if not 1 <= num_domains <= len(self.domain_classes):
            raise ConfigError(f"domain_cifar100: num_domains {num_domains} must be between 1 and the "
                              f"{len(self.domain_classes)} fine classes every superclass has")
        self.tasks = [Task(f"domain {t + 1} (fine classes {classes})", self.classes_in("train", classes),
                           self.classes_in("test", classes))
                      for t, classes in enumerate(self.domain_classes[:num_domains])]

    @staticmethod
    def fine_classes_per_domain(fine: torch.Tensor, coarse: torch.Tensor) -> list[list[int]]:
        """[domain t: the t-th fine class of superclass 0, 1, ..., 19], from the (fine, coarse) label pairs."""
        members = [sorted(fine[coarse == superclass].unique().tolist()) for superclass in range(SUPERCLASSES)]
        if any(not classes for classes in members):
            raise ConfigError("domain_cifar100: every superclass 0..19 needs images in the training data")
        return [[classes[t] for classes in members] for t in range(min(map(len, members)))]

    def classes_in(self, split: str, classes: list[int]) -> torch.Tensor:
        return torch.nonzero(torch.isin(self.classes[split], torch.as_tensor(classes))).flatten()
