"""Datasets the benchmarks train on, materialised once into files that every job reads."""
