"""Model deployment: validate a model file, judge a canary against its baseline, promote or roll back.

Pure parts: `artifacts.py` (which files are models, loaded without running their code), `datasets.py`,
`scores.py` (validation metrics), `canary.py` (Mann-Whitney U per metric, weighted score, verdict);
`samples.py` reads canary and baseline samples from a metric source. The actions are in `tasks/ml.py`;
releases on a service's replicas are the provider's (`ServiceProvider.deploy/promote/rollback`).
"""
