"""The web UI: the Django admin of every domain and a page per run drawing its DAG, served by the API's
server; every permission check goes through `permissions.allowed`."""
