"""Example Pay: a minimal third-party provider for the mobile-money gateway.

Copy this package to start a new operator: `plugin.py` holds the hook implementations,
`client.py` the operator's HTTP client, `simulator/` a small simulator of its sandbox.
It is installed like any outside package and found through its `mmo.providers` entry point.
"""
