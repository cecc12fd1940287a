"""The only writers of the scaling domain's state: targets (and their scale workflows), and the loop's
decisions with the state it carries between ticks. A decision is taken under its target's state row lock
and stored once per decision slot, so two Beats or a redelivered tick decide and scale once."""
