"""Where :func:`gateway.config` finds ``parse_groups`` until it imports it from
:mod:`gateway.embedded.store`; the permission model lives in ``store/_perm.py``."""

from .store._perm import parse_groups

__all__ = ("parse_groups",)
