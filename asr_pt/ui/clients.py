"""Who a request comes from: the address the throttles and quotas count by.

Behind a proxy (a Space, or `ASR_PT_TRUST_PROXY`) every connection comes from the proxy, and the visitor's address is
the one the proxy appended to X-Forwarded-For: the *last* entry, since anything before it is what the visitor sent.
Elsewhere the header is the visitor's own words and is ignored; uvicorn would otherwise rewrite the peer from it for
any connection from 127.0.0.1, so `launch` turns that off first (`asr_pt.settings.configure_server`).
"""

from __future__ import annotations

from collections.abc import Iterable

UNKNOWN = "unknown"
MAX_ADDRESS_CHARS = 100


def client_address(peer: str | None, forwarded_for: Iterable[str], trust_proxy: bool) -> str:
    """The visitor's address from the connection's peer and the X-Forwarded-For header values, in order."""
    if trust_proxy:
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        if hops:
            return hops[-1][:MAX_ADDRESS_CHARS]
    return (peer or UNKNOWN)[:MAX_ADDRESS_CHARS]


def request_address(request, trust_proxy: bool) -> str:
    """`client_address` of a gr.Request (or a Starlette request); "unknown" without one."""
    peer = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None)
    forwarded = headers.getlist("x-forwarded-for") if hasattr(headers, "getlist") else []
    return client_address(peer, forwarded, trust_proxy)
