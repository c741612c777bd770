"""The loader's test model files (tests/data/models: deliberately small, some deliberately broken)."""
from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"


def spec(name: str) -> str:
    return str(MODELS / name)
