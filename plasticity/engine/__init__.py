"""The training engine: one job (`job.py`) runs one run on one block of seeds under its experiment's protocol
(`online.py`, `joint.py`, `tasks.py`, sharing `common.py`), probing the network (`probes.py`) and saving
checkpoints (`checkpoint.py`)."""
