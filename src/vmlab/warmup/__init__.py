"""The warmup lab: native process start-up, the baseline every later figure is compared with."""
