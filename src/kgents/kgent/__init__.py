"""The K-gent: a session that learns from what the user says and answers from what it remembers."""
