"""Apply mode's pass, in steps: what it reads and returns (``ports``), the records on
workloads (``records``), the state of one pass (``state``), HPA targets (``hpa``), the
in-place methods (``in_place``) and rollouts through the pod template (``rollout``).
``controller.autoapply.apply_pass`` runs it."""
