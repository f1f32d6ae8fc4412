#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment, from the working directory (the repository root).
set -euo pipefail
pip install --no-deps --editable .
