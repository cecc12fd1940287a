"""The only writers of the incidents domain's state, one module per part: the service graph (`catalog`),
alerts joining and leaving incidents (`alerts`), the operators' steps and auto-resolve (`transitions`),
the timeline (`timeline`), the escalation document (`escalation_config`), escalations and their pages
(`escalations`, `paging`); and the readers the API and CLI share (`queries`)."""
