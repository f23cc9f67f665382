"""MTN MoMo (MoMo Open API) provider plugin for the mobile-money gateway.

`plugin.py` holds the hook implementations, `client.py` the HTTP calls to the three MoMo
products (collection, disbursement, remittance) and the one translation of MoMo's answers
into the core's errors and statuses, `wire.py` MoMo's payloads, `simulator.py` a simulator
of the MoMo sandbox (`mmo simulate mtn_momo`).
"""
