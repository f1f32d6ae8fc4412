"""Split MNIST under joint training (the stability-gap paper, Fig. 3 left): task k holds the digits
{2k−2, 2k−1}; context k trains on digits 0..2k−1 (the union of tasks 1..k), with one 10-way head."""
from __future__ import annotations

from plasticity.benchmarks import register
from plasticity.benchmarks.contexts import ContextBenchmark, Task, identity_map
from plasticity.config import ConfigError


@register("split_mnist")
class SplitMnist(ContextBenchmark):
    """Split MNIST under joint training: tasks of digit pairs, cumulative contexts."""

    def __init__(self, seeds, device, num_tasks: int = 5, classes_per_task: int = 2, data_path=None):
        super().__init__(seeds, device, data_path)
        if num_tasks < 1 or classes_per_task < 1 or num_tasks * classes_per_task > 10:
            raise ConfigError(f"split_mnist: num_tasks {num_tasks} x classes_per_task {classes_per_task} must be "
                              "between 1 and the 10 digits")
        self.tasks = []
        for k in range(num_tasks):
            classes = list(range(k * classes_per_task, (k + 1) * classes_per_task))
            self.tasks.append(Task(f"digits {classes}", self.labels_in("train", classes),
                                   self.labels_in("test", classes), identity_map(len(seeds))))
