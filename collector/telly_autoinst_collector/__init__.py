"""The self-hosted collector: ingestion, storage, differential privacy and the dashboard.

Installed with the ``collector`` extra and needs Python 3.10 or newer (OpenDP's wheels).
Nothing on the client's import path imports this package.
"""
