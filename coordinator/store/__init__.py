"""The coordinator's state: registered nodes, jobs, researchers."""
