"""Experiments: functions from (backend, parameters) to samples. Lab steps call them."""
