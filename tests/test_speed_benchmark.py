"""benchmarks/speed.py: its cases by name, its plain networks (the same architectures as the engine's), and the
agreement check's machinery (run here CPU against CPU)."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from plasticity.models import build_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("benchmarks_speed", ROOT / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    threads = torch.get_num_threads()      # main() sets its own
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)       # it reads config/experiments.yaml
        patch.setitem(sys.modules, spec.name, module)       # its dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    torch.set_num_threads(threads)


def test_list_names_every_case_with_a_description(speed, capsys):
    assert speed.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(speed.CASES)
    assert {"bit_flipping_bp", "pmnist_cbp", "lop_convnet", "resnet18", "agreement", "augment"} <= set(speed.CASES)
    assert all(len(line.split()) > 3 for line in lines)


def test_unknown_case_is_an_error_naming_the_valid_ones(speed, capsys):
    with pytest.raises(SystemExit) as exit_info:
        speed.main(["--case", "nope"])
    assert exit_info.value.code == 2 and "lop_convnet" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check runs where a GPU is visible")
def test_agreement_without_a_gpu_says_so_and_succeeds(speed, capsys):
    assert speed.main(["--case", "agreement", "--device", "cpu"]) == 0
    assert "needs a CUDA GPU" in capsys.readouterr().out


@pytest.mark.parametrize("arch, plain, classes", [("lop_convnet", "PlainLopConvNet", 2),
                                                  ("resnet18", "PlainResNet18", 100),
                                                  ("slim_resnet18", "PlainSlimResNet18", 10)])
def test_plain_networks_have_the_engine_models_parameters(speed, arch, plain, classes):
    model = build_model({"arch": arch}, (3, 32, 32), classes, [0])
    net = getattr(speed, plain)(classes)
    assert sorted(p.shape for p in net.parameters()) == sorted(p.shape[1:] for p in model.parameters())
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, classes)


def test_agreement_machinery_on_one_device(speed):
    """CPU against CPU: the same numbers (the per-seed path on both sides), the MLP's row kernels against its
    batched path within float32 rounding."""
    assert speed.conv_agreement("lop_convnet", 2, 2, 3, torch.float64, device="cpu") == {"weights": 0.0,
                                                                                         "logits": 0.0}
    assert max(speed.mlp_agreement(2, 5, device="cpu").values()) < 1e-5
