"""Great Game: agent-based simulation of great-power competition for influence in Central Asia."""

__version__ = "0.1.0"
