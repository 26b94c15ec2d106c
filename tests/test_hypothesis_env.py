"""What a walk changes in Hypothesis while it runs, and that it puts it back."""

from __future__ import annotations

import pytest
from hypothesis.internal.conjecture import providers

from harness.hypothesis_env import without_local_constants


def test_the_pool_of_local_constants_is_empty_and_never_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    # Scanning the loaded modules is what the walk avoids (a quarter of a second at its start),
    # and their literals are what it keeps out of its draws.
    loaded = providers._local_constants
    monkeypatch.setattr(providers, "_local_constants", providers.Constants(
        integers={123456789}, floats=loaded.floats, bytes=loaded.bytes, strings=loaded.strings))

    def scan() -> providers.Constants:
        raise AssertionError("the loaded modules were scanned for constants")

    monkeypatch.setattr(providers, "_get_local_constants", scan)
    cache = providers.CONSTANTS_CACHE
    with without_local_constants():
        pool = providers._get_local_constants()
        assert len(pool) == 0
        assert type(pool.floats) is type(providers._local_constants.floats)
        assert providers.CONSTANTS_CACHE is not cache
    assert providers._get_local_constants is scan
    assert providers.CONSTANTS_CACHE is cache
