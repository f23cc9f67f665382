"""Safaricom M-Pesa (Daraja) provider plugin for the mobile-money gateway.

`plugin` holds the hooks, `client` Daraja's HTTP calls and the translation of its answers,
`wire` its payloads, `simulator` a Daraja sandbox over real HTTP.
"""
