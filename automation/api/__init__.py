"""The HTTP API (`automation serve`): enqueue and steer runs, register workflows; OpenAPI-documented."""
