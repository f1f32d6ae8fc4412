"""A training job defers torch._dynamo's import (plasticity.engine.deferred_dynamo): optimizers work the same."""
import json
import subprocess
import sys

import torch

ADAM_STEPS = """
import torch
torch.manual_seed(0)
model = torch.nn.Linear(3, 2)
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
for _ in range(3):
    optimizer.zero_grad()
    model(torch.ones(4, 3)).square().sum().backward()
    optimizer.step()
    scheduler.step()
optimizer.load_state_dict(optimizer.state_dict())
weights = [p.tolist() for p in model.parameters()]
"""


def test_optimizers_step_alike_without_torchdynamo_and_it_loads_when_asked():
    script = ("from plasticity.engine.deferred_dynamo import defer_dynamo_import\ndefer_dynamo_import()\n"
              + ADAM_STEPS + """
import json, sys
deferred = type(sys.modules["torch._dynamo"]).__name__
limit = torch._dynamo.config.cache_size_limit          # anything else asked of it imports the real module
print(json.dumps([weights, deferred, type(sys.modules["torch._dynamo"]).__name__]))
""")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    weights, deferred, afterwards = json.loads(out.splitlines()[-1])
    assert (deferred, afterwards) == ("_DeferredDynamo", "module")
    reference = {}
    exec(ADAM_STEPS, {"torch": torch}, reference)
    assert weights == reference["weights"]
