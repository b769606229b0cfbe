"""Runtime detection: Tetragon exports and Falco alerts normalised into one RuntimeEvent (events),
the KS-RUN-* rules over it (rules, catalogue: GuardDuty Runtime Monitoring equivalents), and Falco's
output field names for runtime findings."""
