"""The K-gent: a session that learns from what the user says and answers from what it remembers."""

from kgents.kgent.session import KGent, Reply

__all__ = ["KGent", "Reply"]
