"""Airtel Money (Airtel Africa Open API) provider plugin for the mobile-money gateway.

`plugin.py` holds the hook implementations, `client.py` the HTTP calls and the one
translation of Airtel's answers into the core's errors and statuses, `wire.py` Airtel's
payloads, `simulator.py` a simulator of the Open API sandbox.
"""
