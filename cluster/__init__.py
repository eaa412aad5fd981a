"""Running the service: local up/down/status, batch submission, cluster configs."""
