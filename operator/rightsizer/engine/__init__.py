"""The recommendation engine: pure maths over usage samples, vectorised over containers.

Nothing in this package performs I/O, reads a clock or the environment: time always comes
in as sample timestamps or an explicit ``now_s`` argument.
"""
