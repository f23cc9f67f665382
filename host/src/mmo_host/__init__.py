"""The Litestar host of the mobile-money gateway.

It loads the installed provider plugins, serves the orchestrator's API and the operators'
webhooks, and keeps every payment, callback, transition and event in Postgres. It imports
no plugin by name: providers come from the `mmo.providers` entry points.
"""
