"""Kept only for ``gateway.embedded`` until its faces answer through :mod:`gateway.wire`."""

from gateway.wire.hoop import failure_body, failure_response

__all__ = ("failure_body", "failure_response")
