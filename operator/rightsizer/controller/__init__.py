"""One reconcile of a RightSizePolicy: gather, compute, decide — called by the Kopf shell."""
