"""Safaricom M-Pesa (Daraja) provider plugin for the mobile-money gateway.

Skeleton only: the package builds and installs, but registers no provider yet, so the
host never serves an operator that is not implemented. The operator's implementation,
its simulator and its entry point in `mmo.providers` come with its own issue.
"""
