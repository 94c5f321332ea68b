"""``rightsizer report``: a one-shot, read-only view of what should change."""
