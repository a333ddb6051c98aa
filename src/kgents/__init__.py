"""kgents: a durable, searchable and observable memory for the K-gent persona agent."""

__version__ = "0.1.0"
