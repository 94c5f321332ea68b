"""The RightSizePolicy status, built from recommendations (pure)."""
