"""The hypnagogic cycle: the K-gent's dream, consolidating what changed and forgetting what went stale."""
