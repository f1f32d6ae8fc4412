"""Networks by name (`model: {arch: NAME, ...}` in an experiment), one file per architecture, each holding S seeds.

Every model maps inputs (S, B, *input_shape) to logits (S, B, classes): the leading seed dimension lets one
process train a block of seeds, and a seed's numbers never depend on its block (bit for bit on the CPU). What the
engine and the methods may rely on (see `SeedNetwork`):

- `forward(x)`, after which `features` holds, per unit layer, the post-activation output the methods and probes
  read (S, B, units, *positions);
- `unit_layers()`: the layers of units (neurons or conv channels) in `plasticity.models.units` terms, through
  which CBP, ReDo and the probes act on any architecture;
- `head`: the output layer (weight (S, classes, in), bias (S, classes)), for head resets and gain modulation;
- `reset_parameters()`: the architecture's own initialisation, drawn from each seed's "init" stream.

Add an architecture by writing `plasticity/models/<name>.py` with a builder decorated `@register("<name>")` taking
`(input_shape, out_features, seeds, **model_settings)`; its docstring's first line is its description in
`plasticity list models`. The experiment's other `model` keys (activation, width, ...) are its settings.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Callable

from torch import nn

from plasticity.config import ConfigError, check_arguments

MODELS: dict[str, Callable[..., nn.Module]] = {}

# The architecture a model spec without `arch` gets: the joint protocol's is the stability-gap paper's gain MLP
# (every method runs on it), every other protocol's the loss-of-plasticity MLP. Job specs keep no `arch` key for
# these, so that their results and run ids are those of the project before models had names.
DEFAULT_ARCH = {"joint": "gain_mlp"}
FALLBACK_ARCH = "mlp"
# Builder arguments the engine sets, never the config.
ENGINE_OPTIONS = ("row_kernels",)


def register(name: str):
    def decorate(build):
        MODELS[name] = build
        return build
    return decorate


def default_arch(protocol: str) -> str:
    return DEFAULT_ARCH.get(protocol, FALLBACK_ARCH)


def model_settings(model_spec: dict, protocol: str = "online") -> tuple[str, dict]:
    """(architecture name, its settings) of an experiment's `model` block; ConfigError for an unknown name or
    setting, listing the valid ones."""
    settings = dict(model_spec)
    arch = settings.pop("arch", None) or default_arch(protocol)
    if arch not in MODELS:
        raise ConfigError(f"unknown architecture {arch!r}; valid: {', '.join(sorted(MODELS))}")
    check_arguments(f"model setting(s) of architecture {arch!r}", MODELS[arch], settings,
                    ("input_shape", "out_features", "seeds") + ENGINE_OPTIONS)
    return arch, settings


def build_model(model_spec: dict, input_shape: tuple[int, ...], out_features: int, seeds: list[int],
                protocol: str = "online", **engine_options) -> nn.Module:
    """The experiment's network for `seeds`, fitted to the benchmark's input shape and number of outputs.
    `engine_options` are passed to the architectures that take them (the MLP's `row_kernels`, its CPU fast path),
    ignored by the others."""
    arch, settings = model_settings(model_spec, protocol)
    build = MODELS[arch]
    accepted = inspect.signature(build).parameters
    options = {name: value for name, value in engine_options.items() if name in accepted}
    return build(tuple(input_shape), out_features, seeds, **settings, **options)


# Register every module of this package: adding a file needs no edit here.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
