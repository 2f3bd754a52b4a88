"""authgateway: an authentication gateway for filesystem REST services."""

__version__ = "0.1.0"
