"""A training job's start-up without TorchDynamo, the compiler that the engine never runs.

Constructing a `torch.optim` optimizer (and its first `step`) imports `torch._dynamo`, which takes longer than
importing torch itself and is most of a small job's start-up, to call two things that do nothing outside
compilation: `graph_break()` and `disable(fn)` (which then calls fn). `defer_dynamo_import()` puts a stand-in for
the module in their way that answers those two; anything else asked of it (`torch.compile`, a submodule) imports
the real module then, and the stand-in passes every later request on to it. One difference remains after that: the
optimizer functions that met the stand-in keep their undecorated selves, which matters only inside a compiled
region (TorchDynamo would trace into them instead of skipping them).
"""
from __future__ import annotations

import importlib
import sys
import types

NAME = "torch._dynamo"


class _DeferredDynamo(types.ModuleType):
    def __init__(self):
        super().__init__(NAME)

    def graph_break(self) -> None:
        """Outside compilation a graph break is nothing."""

    def disable(self, fn=None, recursive: bool = True, **options):
        """Outside compilation a function with TorchDynamo disabled is the function."""
        return fn if fn is not None else (lambda function: function)

    def __getattr__(self, name: str):
        return getattr(_real_dynamo(), name)


def _real_dynamo() -> types.ModuleType:
    """Import the real torch._dynamo in the stand-in's place (once)."""
    if isinstance(sys.modules.get(NAME), _DeferredDynamo):
        import torch
        del sys.modules[NAME]
        vars(torch).pop("_dynamo", None)
        importlib.import_module(NAME)
    return sys.modules[NAME]


def defer_dynamo_import() -> None:
    """Install the stand-in, unless torch._dynamo is imported already."""
    import torch
    if NAME not in sys.modules:
        sys.modules[NAME] = torch._dynamo = _DeferredDynamo()
