"""The alerting domain: metric sources, rules, the alert lifecycle, noise suppression, notifications."""
