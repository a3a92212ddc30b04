"""The in-process store keeps the contract every store keeps."""

from __future__ import annotations

import pytest

from qwen_dev_cli.core.state import MemoryStore

from .store_contract import StoreContract


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def peer(store: MemoryStore) -> MemoryStore:
    return store


class TestMemoryStore(StoreContract):
    pass
