"""The grader: declarative checks from lab.toml evaluated against a report."""
