"""plasticity.workflow without Snakemake: the job table, specs, inputs, resource estimates and errors."""
from __future__ import annotations

import json

import pytest
import yaml

from plasticity.config import ConfigError, deep_merge
from plasticity.workflow import Workflow, gres_gpus
from workflow_helpers import SMOKE, copy_workflow


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("workflow_module"))


def scale(root, **changes) -> dict:
    """The smoke scale merged over the default config, as Snakemake merges --configfile, with `changes`."""
    config = yaml.safe_load((root / "config/config.yaml").read_text())
    config = deep_merge(config, yaml.safe_load((root / SMOKE).read_text()))
    return deep_merge(config, changes)


@pytest.fixture(scope="module")
def smoke(root):
    return Workflow(scale(root), root)


def test_job_table_covers_every_run_and_seed_block(smoke):
    bit_flipping = [key for key in smoke.jobs if key[0] == "bit_flipping"]
    runs = smoke.runs["bit_flipping"]
    assert len(bit_flipping) == len(runs) * 2          # 3 seeds at 2 per job: blocks 0-1 and 2-2
    assert smoke.job("bit_flipping", "cbp", "2-2") == [2]
    spec = json.loads(smoke.train_spec("bit_flipping", "cbp", "0-1"))
    assert spec["seeds"] == [0, 1] and spec["method"] == "cbp" and spec["device"] == "cpu"


@pytest.mark.parametrize("changes, message", [
    ({"bit_flipping": {"model": {"width": 0}}},
     "experiment 'bit_flipping' (scale 'smoke'): model.width: 0 is less than the minimum of 1"),
    ({"bit_flipping": {"runs": {"cbp": {"hparams": {"decay_rate": 2}}}}},
     "run 'cbp' of experiment 'bit_flipping' (scale 'smoke'): "
     "hparams.decay_rate: 2 is greater than the maximum of 1"),
])
def test_schema_error_names_the_experiment_or_run_of_one_call(root, changes, message):
    """The experiments, then the runs, are each checked in one validate call: the message still names the entry."""
    with pytest.raises(ConfigError) as error:
        Workflow(scale(root, overrides={"smoke": changes}), root)
    assert str(error.value) == message


def test_an_experiments_own_seeds_per_job_wins(root):
    workflow = Workflow(scale(root, overrides={"smoke": {"bit_flipping": {"seeds_per_job": 1}}}), root)
    assert sorted(block for name, run, block in workflow.jobs if (name, run) == ("bit_flipping", "cbp")) == \
        ["0-0", "1-1", "2-2"]


def test_inputs_are_the_runs_sources_and_its_data(smoke):
    inputs = smoke.train_inputs("pmnist_methods", "cbp", "0-1")
    assert inputs["data"] == "resources/mnist.npz"
    assert "plasticity/methods/cbp.py" in inputs["sources"] and "plasticity/engine/online.py" in inputs["sources"]
    assert "plasticity/engine/joint.py" not in inputs["sources"]
    assert "data" not in smoke.train_inputs("bit_flipping", "cbp", "0-1")


def test_jobs_that_train_the_same_thing_train_once(root, smoke):
    """BP at the same step size and width in three permuted-MNIST experiments trains once; the others relabel it.
    A job differing in anything but its labels (here its step size) trains on its own."""
    original = ("pmnist_step_size", "bp-lr_0.003", "0-1")
    assert {key: value for key, value in smoke.trained_as.items() if value == original} == {
        ("pmnist_width", "bp-width_16", "0-1"): original, ("pmnist_rate", "bp-examples_per_task_200", "0-1"): original,
        ("pmnist_methods", "bp", "0-1"): original}
    assert smoke.train_inputs("pmnist_methods", "bp", "0-1")["same_as"] == Workflow.run_parquet(*original)
    assert "same_as" not in smoke.train_inputs(*original)
    assert smoke.estimated_seconds("pmnist_methods", "bp", "0-1") < smoke.estimated_seconds(*original)
    other_step = {"pmnist_methods": {"runs": {"bp": {"hparams": {"lr": 0.005}}}}}
    changed = Workflow(scale(root, overrides={"smoke": other_step}), root)
    assert ("pmnist_methods", "bp", "0-1") not in changed.trained_as


def test_resources_follow_the_jobs_size(smoke):
    assert smoke.runtime("bit_flipping", "cbp", "0-1") >= 10 and smoke.mem_mb("pmnist_methods", "bp", "0-1") > 1500
    assert smoke.slurm_gpus("bit_flipping") == {"gpu": 0, "gpu_model": None, "gres": ""}
    assert smoke.group("bit_flipping", "cbp", "0-1") == "train_cpu"
    assert gres_gpus("gpu") == 1 and gres_gpus("gpu:a100:2") == 2


def test_longer_jobs_are_scheduled_first(root):
    default = Workflow(yaml.safe_load((root / "config/config.yaml").read_text()), root)
    priority = {key: default.priority(*key) for key in default.jobs}
    # Shrink & Perturb draws a Gaussian per parameter, seed and step on top of BP's work; a larger block costs more
    bp = ("pmnist_step_size", "bp-lr_0.003")
    assert priority["pmnist_methods", "shrink_perturb", "0-4"] > priority[(*bp, "0-4")]
    assert priority[(*bp, "0-4")] > priority["pmnist_width", "bp-width_25", "0-4"]
    assert default.priority(*bp, "0-4") > Workflow(scale(root), root).priority(*bp, "0-1")
    assert default.runtime("pmnist_methods", "shrink_perturb", "0-4") > default.runtime(*bp, "0-4")


@pytest.mark.parametrize("target, words", [
    (("bit_flipping", "no_such_run", "0-1"), ["'no_such_run'", "cbp"]),
    (("bit_flipping", "cbp", "0-5"), ["'0-5'", "0-1"]),
    (("no_such_experiment", "cbp", "0-1"), ["'no_such_experiment'", "bit_flipping"]),
])
def test_a_target_that_is_no_job_names_what_is_valid(smoke, target, words):
    with pytest.raises(ConfigError) as error:
        smoke.job(*target)
    assert all(word in str(error.value) for word in words)


def test_catalog_answer_is_cached_by_the_sources_and_by_run(root, smoke):
    cache = root / ".snakemake/plasticity-catalog"
    cached = sorted(cache.glob("**/*.json"))
    assert cached
    Workflow(scale(root), root)                       # unchanged library and runs: no new entry
    assert sorted(cache.glob("**/*.json")) == cached
    # One changed run (a value no other test uses): one new entry, that run's check
    changed = Workflow(scale(root, overrides={"smoke": {"bit_flipping": {"runs": {"cbp": {"hparams": {
        "replacement_rate": 0.000123}}}}}}), root)
    new = set(cache.glob("**/*.json")) - set(cached)
    assert len(new) == 1 and new.pop().parent.name == "runs"
    assert changed.catalog["sources"].keys() == smoke.catalog["sources"].keys()
    assert changed.catalog["macs"] == smoke.catalog["macs"]


def test_data_sources_from_the_scale_file(root):
    """The smoke scale's vision sets are synthetic; a path that does not exist, or a set an experiment needs with no
    path and no download, stops with the data set's one message."""
    workflow = Workflow(scale(root), root)
    assert workflow.data_flags("cifar10") == "--synthetic" and workflow.data_flags("mnist") == ""
    assert "pmnist_methods" in workflow.needed_by("mnist")
    assert workflow.needed_by("imagenet32") == ["imagenet_step_size", "imagenet_methods"]
    workflow._check_data()              # synthetic: fine
    smoke_data = workflow.config["data"]
    workflow.config = {**workflow.config, "data": {**smoke_data, "imagenet32": None}}
    needers = r"experiments 'imagenet_step_size', 'imagenet_methods' and"
    with pytest.raises(ConfigError, match=rf"^imagenet32 is needed by {needers} cannot be "
                                          r"downloaded: get the 32x32 downsampled ImageNet from image-net\.org.*"
                                          r"then set data: \{imagenet32: PATH\}"):
        workflow._check_data()
    workflow.config["data"] = {**smoke_data, "imagenet32": str(root / "nowhere")}
    with pytest.raises(ConfigError, match=rf"^imagenet32 is needed by {needers} cannot be read: "
                                          r"the path .*nowhere \(data: \{imagenet32: .*nowhere\}\) does not exist"):
        workflow._check_data()
    workflow.config["data"] = {**smoke_data, "imagenet32": str(root)}
    workflow._check_data()
    assert workflow.data_flags("imagenet32") == f"--path {root}"
    workflow.config["data"] = {**smoke_data, "mnist": "synthetic"}
    with pytest.raises(ConfigError, match=r"data: \{mnist: synthetic\}: mnist has no synthetic source"):
        workflow._check_data()
