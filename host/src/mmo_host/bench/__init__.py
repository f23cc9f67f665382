"""`mmo bench`: the gateway under load, with the database's own ceilings (docs/performance.md)."""

from mmo_host.bench.run import Options, run, scale_out

__all__ = ["Options", "run", "scale_out"]
