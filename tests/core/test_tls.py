"""TLS per endpoint: the trust store for https; for plain http (a server on this
machine, usually) none is loaded, and a context that trusts nothing stands in."""

from __future__ import annotations

import ssl

import pytest

from qwen_dev_cli.core.providers.openai_compat import _tls_for


@pytest.mark.parametrize("url", ["http://127.0.0.1:11434/v1", "HTTP://lab.internal/v1"])
def test_plain_http_loads_no_trust_store_and_would_refuse_any_certificate(url: str) -> None:
    context = _tls_for(url)
    assert isinstance(context, ssl.SSLContext)
    assert context.get_ca_certs() == []  # nothing is trusted
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_https_verifies_with_the_usual_trust_store() -> None:
    assert _tls_for("https://api.sambanova.ai/v1") is True
