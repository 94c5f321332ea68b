"""Adapters that read usage from outside (files, Prometheus, metrics-server).

These are the only modules that perform I/O; each turns what it reads into a samples
frame (``rightsizer.samples.frame``) and nothing else.
"""
