"""The reference workflows from shared/payloads/, copied unchanged so the suite runs anywhere."""

import json
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
PATHS = sorted(DIRECTORY.glob("*.json"))
NAMES = [path.stem for path in PATHS]
assert len(PATHS) == 8, "the eight reference payloads must be here"


def load(name: str) -> dict:
    return json.loads((DIRECTORY / f"{name}.json").read_text())
