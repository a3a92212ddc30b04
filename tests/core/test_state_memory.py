"""The in-process store keeps the contract every store keeps."""

from __future__ import annotations

import pytest

from qwen_dev_cli.core.state import MemoryStore

from .fakes import FakeClock
from .store_contract import StoreContract, Wait


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def wait(clock: FakeClock) -> Wait:
    return clock.sleep


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def peer(store: MemoryStore) -> MemoryStore:
    return store


class TestMemoryStore(StoreContract):
    pass
