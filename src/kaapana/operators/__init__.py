"""Built-in operators of the workflow library, one module per job.

Each module holds an operator's core as plain functions over files and datasets plus a pydantic
parameters model, so it can be tested alone; workflow adapters call these cores.
"""
