"""Shared test harness: real torch schedulers as ground truth, and original-vs-converted training runs.

A written Lightning/Hydra config is instantiated the way the framework does it (import the class,
call it with its arguments) and trained next to the original weight-decay run; in float64 with a
negligible BatchNorm eps the two networks must agree at every step (THEORY.md §3).
"""
from __future__ import annotations

import copy
import importlib
import types
from typing import Any, Callable

import torch
import yaml

from explr.load import load_model
from tests.conftest import FIXTURES

MODEL = str(FIXTURES / "models" / "conv_bias_bn.py")
