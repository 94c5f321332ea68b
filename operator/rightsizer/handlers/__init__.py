"""The Kopf shell: registrations only; each handler delegates to ``rightsizer.controller``."""
