"""Labs as data: lab.toml loading, validation and the task runner."""
