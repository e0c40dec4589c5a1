"""The composition root: CLI, supervisor, operator tools, officer web app, docs generators."""
