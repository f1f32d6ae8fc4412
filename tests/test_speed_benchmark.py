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


def test_default_jobs_are_timed_on_a_part_that_grows_linearly(speed):
    online = {"protocol": "online", "examples": 300_000, "bin_size": 10_000}
    assert speed.job_units(online) == 30 and speed.truncated(online, 2)["examples"] == 20_000
    joint = {"protocol": "joint", "iterations_per_context": 200, "examples": 0}
    assert speed.job_units(joint) == 200 and speed.truncated(joint, 5) == {**joint, "iterations_per_context": 5}
    with pytest.raises(ValueError, match="'tasks'"):
        speed.job_units({"protocol": "tasks"})


def test_default_jobs_are_recorded_longest_first_from_a_runs_provenance(speed, tmp_path):
    for experiment, run, seconds in [("bit_flipping", "bp", 60.5), ("pmnist_methods", "cbp", 600.0)]:
        folder = tmp_path / "runs" / experiment / run
        folder.mkdir(parents=True)
        (folder / "seeds0-4.json").write_text(f'{{"wall_seconds": {seconds}, "host": "here"}}')
    out = tmp_path / "jobs.csv"
    assert speed.record_default_jobs(tmp_path, out) == 2
    lines = out.read_text().splitlines()
    assert lines[0] == "experiment,run,block,wall_seconds,recorded,host"
    assert [line.split(",")[:4] for line in lines[1:]] == [["pmnist_methods", "cbp", "0-4", "600.0"],
                                                          ["bit_flipping", "bp", "0-4", "60.5"]]
    with pytest.raises(SystemExit, match="no job provenance"):
        speed.record_default_jobs(tmp_path / "nothing", out)
