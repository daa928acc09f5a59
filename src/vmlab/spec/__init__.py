"""The lab contract, below both the run pipeline (vmlab.labs) and the grader (vmlab.check).

lab.toml's models (`lab`, `checks`, `variants`), the report paths and expressions checks read
(`paths`, `expr`) and the one digest of a file or a folder (`digest`). Nothing here imports vmlab above
the report model and the errors, so both sides read one contract and never each other's code.
"""
