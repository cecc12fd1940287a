"""The only writers of the alerting domain's state: one module per part (samples, rules and the alerting
document, alerts and their log, silences, notification groups). Every transition is a guarded update or
runs under the alert's row lock, so two evaluators, two Beats or a redelivered message change nothing
twice."""
