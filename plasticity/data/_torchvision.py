"""Import torchvision under the CPU build of torch that this project pins.

torchvision 0.28 ships compiled operators built for CUDA. Under CPU torch 2.13 they do not load, and
`import torchvision` stops with `RuntimeError: operator torchvision::nms does not exist` while registering
fake kernels for `nms` and `qnms`. We use only its datasets (and transforms), not `torchvision.ops`, so
declaring those two operator schemas lets the import finish. The operators stay unusable on such a machine.
Where the real operators load (a CUDA machine), the first import succeeds and nothing is declared.
"""

import sys

import torch

# The operator declarations last only as long as this Library object, so keep it for the whole process.
_LIBRARY = None


def import_torchvision():
    """Return the `torchvision` module, declaring the missing `nms`/`qnms` schemas first if needed."""
    global _LIBRARY
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err) or _LIBRARY is not None:
            raise
        # The failed import leaves some submodules behind, bound to the failed parent: drop them all.
        for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
            del sys.modules[name]
        _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
        _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
    return torchvision
