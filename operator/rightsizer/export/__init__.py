"""Recommendations as patches for GitOps repositories (kustomize, RFC 6902 JSON patch)."""
